// Conformance probe: runs one client scenario against a Kafka-protocol broker and prints ONE
// JSON document (sorted keys) holding only results that must be equal on edm broker and on
// Apache Kafka (no ids, hosts, absolute times; topic names without the prefix).
//
//   javac -cp '<kafka>/libs/*' -d /tmp/probe-classes Probe.java
//   java -Dlog4j2.configurationFile=tests/conformance/java/log4j2.properties \
//        -cp '<kafka>/libs/*:/tmp/probe-classes' Probe <bootstrap> <scenario> <unique-prefix>
//
// Each step stores either its result or {"exception": "<SimpleClassName>"}; every wait is
// bounded ("ProbeTimeout" = a poll loop ran out of time, "ProbeWaitTimeout" = a future did
// not complete), and a watchdog prints what was gathered after 28 s. Clients are never
// closed unless the scenario needs it: the process halts right after printing.

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;

public class Probe {
    static String bootstrap, prefix;
    static final Map<String, Object> out = Collections.synchronizedMap(new TreeMap<>());
    static final AtomicBoolean printed = new AtomicBoolean();
    static volatile String currentStep = "start";
    static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS)
            .enable(SerializationFeature.INDENT_OUTPUT);

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: Probe <bootstrap> <scenario> <unique-prefix>");
            System.exit(2);
        }
        bootstrap = args[0];
        prefix = args[2];
        out.put("scenario", args[1]);
        Thread watchdog = new Thread(() -> {
            try { Thread.sleep(28_000); } catch (InterruptedException e) { return; }
            out.put("watchdogTimeoutIn", currentStep);
            emit(3);
        });
        watchdog.setDaemon(true);
        watchdog.start();
        switch (args[1]) {
            case "produce-consume": produceConsume(); break;
            case "list-offsets": listOffsets(); break;
            case "errors": errors(); break;
            case "describe-configs": describeConfigs(); break;
            case "transactions": transactions(); break;
            case "groups": groups(); break;
            case "idempotence": idempotence(); break;
            default: System.err.println("unknown scenario " + args[1]); System.exit(2);
        }
        emit(0);
    }

    // ---------------------------------------------------------------- helpers

    static void emit(int code) {
        if (!printed.compareAndSet(false, true)) return;
        try {
            String text;
            synchronized (out) { text = JSON.writeValueAsString(out); }
            System.out.println(text);
        } catch (Exception e) {
            System.out.println("{\"probeOutputError\": \"" + e.getClass().getSimpleName() + "\"}");
        }
        System.out.flush();
        Runtime.getRuntime().halt(code);
    }

    interface Body { Object run() throws Exception; }

    /** Runs one step; stores its result (or the exception's class name) under `name`. */
    static Object step(String name, Body body) {
        currentStep = name;
        Object value;
        try {
            value = body.run();
        } catch (Throwable t) {
            System.err.println("step " + name + ": " + t);
            value = Map.of("exception", exName(t));
        }
        out.put(name, value == null ? "null" : value);
        return value;
    }

    static String exName(Throwable t) {
        while ((t instanceof ExecutionException || t instanceof CompletionException) && t.getCause() != null)
            t = t.getCause();
        if (t instanceof TimeoutException) return "ProbeWaitTimeout"; // java.util.concurrent's
        if (t.getClass() == KafkaException.class && t.getCause() != null)
            return "KafkaException(" + exName(t.getCause()) + ")";
        return t.getClass().getSimpleName();
    }

    static class ProbeTimeout extends RuntimeException {
        ProbeTimeout(String what) { super(what); }
    }

    static Map<String, Object> map(Object... kv) {
        Map<String, Object> m = new TreeMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    static <T> T get(Future<T> f) throws Exception { return f.get(12, TimeUnit.SECONDS); }

    static TopicPartition tp(String name, int p) { return new TopicPartition(prefix + name, p); }

    static String strip(String topic) {
        return topic.startsWith(prefix) ? topic.substring(prefix.length()) : topic;
    }

    static String key(TopicPartition tp) { return strip(tp.topic()) + "-" + tp.partition(); }

    static long now() { return System.currentTimeMillis(); }

    static Properties props(String[] base, String[] overrides) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        for (int i = 0; i < base.length; i += 2) p.put(base[i], base[i + 1]);
        for (int i = 0; i < overrides.length; i += 2) p.put(overrides[i], overrides[i + 1]);
        return p;
    }

    static Admin admin() {
        return Admin.create(props(new String[]{"request.timeout.ms", "8000", "default.api.timeout.ms", "10000"},
                new String[0]));
    }

    static KafkaProducer<String, String> producer(String... overrides) {
        return new KafkaProducer<>(props(new String[]{
                "key.serializer", "org.apache.kafka.common.serialization.StringSerializer",
                "value.serializer", "org.apache.kafka.common.serialization.StringSerializer",
                "acks", "all", "linger.ms", "0", "max.block.ms", "10000",
                "request.timeout.ms", "8000", "delivery.timeout.ms", "15000"}, overrides));
    }

    static KafkaConsumer<String, String> consumer(String... overrides) {
        return new KafkaConsumer<>(props(new String[]{
                "key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer",
                "value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer",
                "enable.auto.commit", "false", "auto.offset.reset", "earliest", "group.protocol", "classic",
                "fetch.max.wait.ms", "200", "request.timeout.ms", "8000",
                "default.api.timeout.ms", "10000"}, overrides));
    }

    static void createTopic(Admin a, String name, int partitions, Map<String, String> configs) throws Exception {
        get(a.createTopics(List.of(new NewTopic(prefix + name, partitions, (short) 1).configs(configs))).all());
        waitPartitions(a, name, partitions);
    }

    /** Polls describeTopics (up to 8 s) until `name` has `want` partitions; returns the last count. */
    static int waitPartitions(Admin a, String name, int want) throws Exception {
        long deadline = now() + 8000;
        int n = -1;
        Exception last = null;
        while (now() < deadline) {
            try {
                n = get(a.describeTopics(List.of(prefix + name)).allTopicNames()).get(prefix + name).partitions().size();
                if (n == want) return n;
            } catch (Exception e) { last = e; }
            Thread.sleep(100);
        }
        if (n < 0 && last != null) throw last;
        return n;
    }

    static Map<String, Object> offsets(Map<TopicPartition, Long> m) {
        Map<String, Object> r = new TreeMap<>();
        m.forEach((tp, o) -> r.put(key(tp), o));
        return r;
    }

    static List<Integer> partitions(Collection<TopicPartition> tps) {
        return tps.stream().map(TopicPartition::partition).sorted().collect(Collectors.toList());
    }

    /** Assigns `tps`, seeks to the beginning and polls until every position reaches its end offset. */
    static List<ConsumerRecord<String, String>> readToEnd(KafkaConsumer<String, String> c, List<TopicPartition> tps)
            throws Exception {
        c.assign(tps);
        c.seekToBeginning(tps);
        Map<TopicPartition, Long> end = c.endOffsets(tps);
        List<ConsumerRecord<String, String>> recs = new ArrayList<>();
        long deadline = now() + 10_000;
        while (!tps.stream().allMatch(tp -> c.position(tp) >= end.get(tp))) {
            if (now() > deadline) throw new ProbeTimeout("readToEnd");
            c.poll(Duration.ofMillis(200)).forEach(recs::add);
        }
        recs.sort(Comparator.comparing((ConsumerRecord<String, String> r) -> r.partition()).thenComparing(r -> r.offset()));
        return recs;
    }

    // ---------------------------------------------------------------- 1. produce-consume
    // Keyed, headered records to explicit partitions: per-record metadata offsets, what a
    // group-less consumer reads back (partition, offset, key, value, headers, timestamp type),
    // and the beginning/end offsets of both partitions.
    static void produceConsume() throws Exception {
        String t = prefix + "pc";
        Admin a = admin();
        step("createTopic", () -> { createTopic(a, "pc", 2, Map.of()); return "ok"; });
        step("produced", () -> {
            KafkaProducer<String, String> p = producer();
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                ProducerRecord<String, String> r = new ProducerRecord<>(t, i % 2, "k" + i, "v" + i);
                r.headers().add("h", String.valueOf(i).getBytes(StandardCharsets.UTF_8));
                fs.add(p.send(r));
            }
            p.flush();
            List<Object> l = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                try {
                    RecordMetadata m = get(fs.get(i));
                    l.add(map("i", i, "partition", m.partition(), "offset", m.offset()));
                } catch (Exception e) { l.add(map("i", i, "exception", exName(e))); }
            }
            return l;
        });
        KafkaConsumer<String, String> c = consumer("isolation.level", "read_uncommitted");
        List<TopicPartition> tps = List.of(tp("pc", 0), tp("pc", 1));
        step("consumed", () -> {
            c.assign(tps);
            c.seekToBeginning(tps);
            List<ConsumerRecord<String, String>> recs = new ArrayList<>();
            long deadline = now() + 10_000;
            while (recs.size() < 20 && now() < deadline) c.poll(Duration.ofMillis(200)).forEach(recs::add);
            recs.sort(Comparator.comparing((ConsumerRecord<String, String> r) -> r.partition()).thenComparing(r -> r.offset()));
            List<Object> l = new ArrayList<>();
            for (ConsumerRecord<String, String> r : recs) {
                List<Object> hs = new ArrayList<>();
                for (Header h : r.headers()) hs.add(map("key", h.key(), "value", new String(h.value(), StandardCharsets.UTF_8)));
                l.add(map("partition", r.partition(), "offset", r.offset(), "key", r.key(), "value", r.value(),
                        "headers", hs, "timestampType", r.timestampType().toString()));
            }
            return l;
        });
        step("beginningOffsets", () -> offsets(c.beginningOffsets(tps)));
        step("endOffsets", () -> offsets(c.endOffsets(tps)));
    }

    // ---------------------------------------------------------------- 2. list-offsets
    // Records with timestamps base+1000..base+5000, then Admin.listOffsets for every OffsetSpec
    // kind and KafkaConsumer.offsetsForTimes (timestamps printed relative to base).
    static void listOffsets() throws Exception {
        String t = prefix + "lo";
        TopicPartition tp = tp("lo", 0);
        Admin a = admin();
        // Timestamps a minute ago, not in 1970: a broker may delete records past its
        // retention (7 days) at any moment. Printed relative to `base`.
        long base = (System.currentTimeMillis() / 1000) * 1000 - 60_000;
        step("createTopic", () -> { createTopic(a, "lo", 1, Map.of()); return "ok"; });
        step("produced", () -> {
            KafkaProducer<String, String> p = producer();
            List<Object> l = new ArrayList<>();
            for (int i = 1; i <= 5; i++) {
                RecordMetadata m = get(p.send(new ProducerRecord<>(t, 0, base + i * 1000L, "k" + i, "v" + i)));
                l.add(map("offset", m.offset(), "timestamp", m.timestamp() - base));
            }
            return l;
        });
        Map<String, OffsetSpec> specs = new LinkedHashMap<>();
        specs.put("earliest", OffsetSpec.earliest());
        specs.put("latest", OffsetSpec.latest());
        specs.put("maxTimestamp", OffsetSpec.maxTimestamp());
        for (long ts : new long[]{0, 2500, 5000, 9999}) specs.put("forTimestamp" + ts, OffsetSpec.forTimestamp(base + ts));
        specs.forEach((name, spec) -> step("listOffsets." + name, () -> {
            ListOffsetsResult.ListOffsetsResultInfo info = get(a.listOffsets(Map.of(tp, spec)).partitionResult(tp));
            return map("offset", info.offset(), "timestamp", info.timestamp() < 0 ? info.timestamp() : info.timestamp() - base);
        }));
        KafkaConsumer<String, String> c = consumer();
        for (long ts : new long[]{2500, 9999}) {
            step("offsetsForTimes." + ts, () -> {
                OffsetAndTimestamp o = c.offsetsForTimes(Map.of(tp, base + ts)).get(tp);
                return o == null ? "null" : map("offset", o.offset(), "timestamp", o.timestamp() - base);
            });
        }
    }

    // ---------------------------------------------------------------- 3. errors
    // The exception class each client call surfaces for invalid requests (a..i in the brief).
    static void errors() throws Exception {
        String t = prefix + "err";
        Admin a = admin();
        step("a_createZeroPartitions", () -> {
            get(a.createTopics(List.of(new NewTopic(prefix + "zero", 0, (short) 1))).all());
            return "ok";
        });
        step("setup_createErr", () -> { createTopic(a, "err", 2, Map.of()); return "ok"; });
        step("b_shrinkTo1", () -> { get(a.createPartitions(Map.of(t, NewPartitions.increaseTo(1))).all()); return "ok"; });
        step("c_growTo3", () -> { get(a.createPartitions(Map.of(t, NewPartitions.increaseTo(3))).all()); return "ok"; });
        step("c_partitionsAfterGrow", () -> waitPartitions(a, "err", 3));
        step("d_createPartitionsUnknown", () -> {
            get(a.createPartitions(Map.of(prefix + "nosuch", NewPartitions.increaseTo(2))).all());
            return "ok";
        });
        step("e_recordTooLarge", () -> {
            KafkaProducer<String, String> p = producer("max.request.size", "5000000");
            RecordMetadata m = get(p.send(new ProducerRecord<>(t, 0, "big", "x".repeat(2 * 1024 * 1024))));
            return map("ok", true, "offset", m.offset());
        });
        step("f_seekOutOfRange", () -> {
            KafkaConsumer<String, String> c = consumer("auto.offset.reset", "none");
            c.assign(List.of(tp("err", 0)));
            c.seek(tp("err", 0), 1000);
            long deadline = now() + 8000;
            int n = 0;
            while (now() < deadline) n += c.poll(Duration.ofMillis(200)).count();
            return map("noException", true, "records", n);
        });
        step("g_describeMissing", () -> {
            get(a.describeTopics(List.of(prefix + "missing")).allTopicNames());
            return "ok";
        });
        step("h_createExisting", () -> {
            get(a.createTopics(List.of(new NewTopic(t, 2, (short) 1))).all());
            return "ok";
        });
        step("i_sendToPartition7", () -> {
            KafkaProducer<String, String> p = producer("max.block.ms", "3000");
            RecordMetadata m = get(p.send(new ProducerRecord<>(t, 7, "k", "v")));
            return map("ok", true, "partition", m.partition());
        });
    }

    // ---------------------------------------------------------------- 4. describe-configs
    // Topic configs (value, isDefault, source) for a plain and a compacted topic, and after
    // incrementalAlterConfigs sets cleanup.policy=compact on the plain one.
    // Not min.insync.replicas: Apache Kafka 4 reports it as a dynamic broker default that
    // its storage format writes (a detail of one installation, not of the protocol); not
    // retention.bytes, whose default differs on purpose (README: edm bounds its in-memory
    // partitions).
    static final List<String> CONFIG_KEYS = List.of("cleanup.policy", "retention.ms",
            "max.message.bytes", "message.timestamp.type", "min.cleanable.dirty.ratio",
            "delete.retention.ms");

    static Map<String, Object> describeTopicConfig(Admin a, String name) throws Exception {
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, prefix + name);
        Config cfg = get(a.describeConfigs(List.of(r)).values().get(r));
        Map<String, Object> m = new TreeMap<>();
        for (String k : CONFIG_KEYS) {
            ConfigEntry e = cfg.get(k);
            m.put(k, e == null ? "absent"
                    : map("value", String.valueOf(e.value()), "isDefault", e.isDefault(), "source", e.source().toString()));
        }
        return m;
    }

    static void describeConfigs() throws Exception {
        Admin a = admin();
        step("createTopics", () -> {
            createTopic(a, "plain", 1, Map.of());
            createTopic(a, "compacted", 1, Map.of("cleanup.policy", "compact"));
            return "ok";
        });
        step("configs.plain", () -> describeTopicConfig(a, "plain"));
        step("configs.compacted", () -> describeTopicConfig(a, "compacted"));
        step("alterPlainToCompact", () -> {
            ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, prefix + "plain");
            AlterConfigOp op = new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.SET);
            get(a.incrementalAlterConfigs(Map.of(r, List.of(op))).all());
            return "ok";
        });
        step("configs.plainAfterAlter", () -> {
            // The change reaches the broker's metadata asynchronously: wait (up to 5 s) for it.
            long deadline = now() + 5000;
            Map<String, Object> m = describeTopicConfig(a, "plain");
            while (now() < deadline && !String.valueOf(m.get("cleanup.policy")).contains("value=compact")) {
                Thread.sleep(100);
                m = describeTopicConfig(a, "plain");
            }
            return m;
        });
    }

    // ---------------------------------------------------------------- 5. transactions
    // Committed / aborted / committed transactions with a plain record in between: what
    // read_committed and read_uncommitted consumers see (offsets expose control-marker gaps),
    // and end offsets (LSO vs high watermark) while a transaction is open and after it aborts.
    static List<Object> offsetValues(List<ConsumerRecord<String, String>> recs) {
        return recs.stream().map(r -> map("offset", r.offset(), "value", r.value())).collect(Collectors.toList());
    }

    /** End offsets under both isolation levels; when `settle`, waits (up to 5 s) until they agree. */
    static Map<String, Object> endOffsets(KafkaConsumer<String, String> rc, KafkaConsumer<String, String> ru,
                                          TopicPartition tp, boolean settle) throws Exception {
        long deadline = now() + 5000;
        while (true) {
            long c = rc.endOffsets(List.of(tp)).get(tp), u = ru.endOffsets(List.of(tp)).get(tp);
            if (!settle || c == u || now() > deadline) return map("readCommitted", c, "readUncommitted", u);
            Thread.sleep(100);
        }
    }

    static void transactions() throws Exception {
        String t = prefix + "tx";
        TopicPartition tp = tp("tx", 0);
        Admin a = admin();
        step("createTopic", () -> { createTopic(a, "tx", 1, Map.of()); return "ok"; });
        KafkaProducer<String, String> txp = producer("transactional.id", prefix + "txid", "transaction.timeout.ms", "20000");
        step("initTransactions", () -> { txp.initTransactions(); return "ok"; });
        String[][] txns = {{"a1", "a2", "a3"}, {"b1", "b2"}, {"c1"}};
        for (int n = 0; n < 3; n++) {
            String[] values = txns[n];
            boolean commit = n != 1;
            if (n == 2) step("plainSend.p1", () -> get(producer().send(new ProducerRecord<>(t, 0, null, "p1"))).offset());
            step("txn" + (n + 1) + (commit ? ".commit" : ".abort"), () -> {
                txp.beginTransaction();
                List<Future<RecordMetadata>> fs = new ArrayList<>();
                for (String v : values) fs.add(txp.send(new ProducerRecord<>(t, 0, null, v)));
                txp.flush();
                List<Object> offs = new ArrayList<>();
                for (Future<RecordMetadata> f : fs) offs.add(get(f).offset());
                if (commit) txp.commitTransaction(); else txp.abortTransaction();
                return map("sentOffsets", offs);
            });
        }
        KafkaConsumer<String, String> rc = consumer("isolation.level", "read_committed");
        KafkaConsumer<String, String> ru = consumer("isolation.level", "read_uncommitted");
        step("endOffsetsAfterTxn3", () -> endOffsets(rc, ru, tp, true));
        step("readCommitted", () -> offsetValues(readToEnd(rc, List.of(tp))));
        step("readUncommitted", () -> offsetValues(readToEnd(ru, List.of(tp))));
        step("txn4.openSend.d1", () -> {
            txp.beginTransaction();
            Future<RecordMetadata> f = txp.send(new ProducerRecord<>(t, 0, null, "d1"));
            txp.flush();
            return get(f).offset();
        });
        step("endOffsetsTxn4Open", () -> endOffsets(rc, ru, tp, false));
        step("txn4.abort", () -> { txp.abortTransaction(); return "ok"; });
        step("endOffsetsTxn4Aborted", () -> endOffsets(rc, ru, tp, true));
    }

    // ---------------------------------------------------------------- 6. groups
    // Classic-protocol groups with the range assignor: dynamic join / rebalance / leave,
    // static-member replacement without rebalance, fencing of the replaced member, group
    // descriptions, and a manual offset commit read back through the Admin API.
    static KafkaConsumer<String, String> member(String group, String clientId, String instanceId, int sessionMs,
                                                AtomicInteger callbacks) {
        List<String> o = new ArrayList<>(List.of("group.id", prefix + group, "client.id", prefix + clientId,
                "partition.assignment.strategy", "org.apache.kafka.clients.consumer.RangeAssignor",
                "session.timeout.ms", String.valueOf(sessionMs), "heartbeat.interval.ms", "1000"));
        if (instanceId != null) { o.add("group.instance.id"); o.add(prefix + instanceId); }
        KafkaConsumer<String, String> c = consumer(o.toArray(new String[0]));
        c.subscribe(List.of(prefix + "g"), new ConsumerRebalanceListener() {
            public void onPartitionsRevoked(Collection<TopicPartition> p) { callbacks.incrementAndGet(); }
            public void onPartitionsAssigned(Collection<TopicPartition> p) { callbacks.incrementAndGet(); }
        });
        return c;
    }

    interface Cond { boolean ok(); }

    /** Polls every consumer in turn (100 ms each) until `cond` holds; false if `ms` ran out first. */
    static boolean pollUntil(long ms, Cond cond, List<KafkaConsumer<String, String>> cs) {
        long deadline = now() + ms;
        while (!cond.ok()) {
            if (now() > deadline) return false;
            for (KafkaConsumer<String, String> c : cs) c.poll(Duration.ofMillis(100));
        }
        return true;
    }

    static void mustPollUntil(long ms, Cond cond, List<KafkaConsumer<String, String>> cs) {
        if (!pollUntil(ms, cond, cs)) throw new ProbeTimeout("pollUntil");
    }

    static boolean splitsAll(KafkaConsumer<String, String> x, KafkaConsumer<String, String> y) {
        Set<TopicPartition> u = new HashSet<>(x.assignment());
        u.addAll(y.assignment());
        return !x.assignment().isEmpty() && !y.assignment().isEmpty() && u.size() == 4
                && x.assignment().size() + y.assignment().size() == 4;
    }

    static String bucket(long startMs) { return now() - startMs < 3000 ? "<3s" : ">=3s"; }

    static Map<String, Object> describeGroup(Admin a, String group) throws Exception {
        ConsumerGroupDescription d = get(a.describeConsumerGroups(List.of(prefix + group)).describedGroups().get(prefix + group));
        List<String> instances = new ArrayList<>();
        List<Integer> sizes = new ArrayList<>();
        for (MemberDescription m : d.members()) {
            instances.add(m.groupInstanceId().map(Probe::strip).orElse("none"));
            sizes.add(m.assignment().topicPartitions().size());
        }
        Collections.sort(instances);
        Collections.sort(sizes);
        return map("state", String.valueOf(d.groupState()), "type", String.valueOf(d.type()),
                "assignor", d.partitionAssignor(), "members", d.members().size(),
                "instanceIds", instances, "assignmentSizes", sizes);
    }

    static void groups() throws Exception {
        Admin a = admin();
        step("createTopic", () -> { createTopic(a, "g", 4, Map.of()); return "ok"; });
        AtomicInteger ignored = new AtomicInteger(), s2Callbacks = new AtomicInteger();
        KafkaConsumer<String, String> ca = member("grp", "a", null, 6000, ignored);
        step("dyn.aAlone", () -> {
            mustPollUntil(10_000, () -> !ca.assignment().isEmpty(), List.of(ca));
            return partitions(ca.assignment());
        });
        KafkaConsumer<String, String> cb = member("grp", "b", null, 6000, ignored);
        step("dyn.aAndB", () -> {
            mustPollUntil(15_000, () -> splitsAll(ca, cb), List.of(ca, cb));
            List<Integer> sizes = new ArrayList<>(List.of(ca.assignment().size(), cb.assignment().size()));
            Collections.sort(sizes);
            Set<TopicPartition> u = new HashSet<>(ca.assignment());
            u.addAll(cb.assignment());
            return map("sizes", sizes, "union", partitions(u));
        });
        step("dyn.aAfterBLeaves", () -> {
            cb.close(CloseOptions.timeout(Duration.ofSeconds(5)));
            long t0 = now();
            mustPollUntil(12_000, () -> ca.assignment().size() == 4, List.of(ca));
            return map("partitions", partitions(ca.assignment()), "took", bucket(t0));
        });
        step("dyn.describe", () -> describeGroup(a, "grp"));

        KafkaConsumer<String, String> s1 = member("sgrp", "s1", "static-1", 10_000, ignored);
        KafkaConsumer<String, String> s2 = member("sgrp", "s2", "static-2", 10_000, s2Callbacks);
        Map<String, List<Integer>> before = new TreeMap<>();
        step("static.assigned", () -> {
            mustPollUntil(15_000, () -> splitsAll(s1, s2), List.of(s1, s2));
            before.put("static-1", partitions(s1.assignment()));
            before.put("static-2", partitions(s2.assignment()));
            return before;
        });
        // S1 "crashes": never polled or closed again; S1' takes over its group.instance.id.
        int callbacksBefore = s2Callbacks.get();
        KafkaConsumer<String, String> s1b = member("sgrp", "s1b", "static-1", 10_000, ignored);
        step("static.replaced", () -> {
            long t0 = now();
            boolean assigned = pollUntil(10_000, () -> !s1b.assignment().isEmpty(), List.of(s1b, s2));
            String took = assigned ? bucket(t0) : "timeout(10s)";
            long settle = now() + 1500; // keep both polling so a (wrongly) triggered rebalance would show
            while (now() < settle) { s1b.poll(Duration.ofMillis(100)); s2.poll(Duration.ofMillis(100)); }
            return map("took", took, "s1bAssignment", partitions(s1b.assignment()),
                    "sameAsOldS1", partitions(s1b.assignment()).equals(before.get("static-1")),
                    "s2AssignmentChanged", !partitions(s2.assignment()).equals(before.get("static-2")),
                    "s2RebalanceCallbacks", s2Callbacks.get() - callbacksBefore);
        });
        step("static.oldS1Poll", () -> { s1.poll(Duration.ofMillis(500)); return "no-exception"; });
        step("static.describe", () -> describeGroup(a, "sgrp"));

        step("commit.manual", () -> {
            KafkaConsumer<String, String> c = consumer("group.id", prefix + "cgrp");
            c.assign(List.of(tp("g", 0)));
            c.commitSync(Map.of(tp("g", 0), new OffsetAndMetadata(3, "meta")));
            OffsetAndMetadata o = c.committed(Set.of(tp("g", 0))).get(tp("g", 0));
            return o == null ? "null" : map("offset", o.offset(), "metadata", o.metadata());
        });
        step("commit.adminListOffsets", () -> {
            Map<TopicPartition, OffsetAndMetadata> m =
                    get(a.listConsumerGroupOffsets(prefix + "cgrp").partitionsToOffsetAndMetadata());
            Map<String, Object> r = new TreeMap<>();
            m.forEach((tp, o) -> r.put(key(tp), o == null ? "null" : map("offset", o.offset(), "metadata", o.metadata())));
            return r;
        });
    }

    // ---------------------------------------------------------------- 7. idempotence
    // 100 un-awaited sends from an idempotent producer land contiguously, in send order.
    static void idempotence() throws Exception {
        String t = prefix + "idem";
        Admin a = admin();
        step("createTopic", () -> { createTopic(a, "idem", 1, Map.of()); return "ok"; });
        step("sent", () -> {
            KafkaProducer<String, String> p = producer("enable.idempotence", "true");
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < 100; i++) fs.add(p.send(new ProducerRecord<>(t, 0, "k" + i, "v" + i)));
            p.flush();
            boolean contiguous = true;
            Set<String> failures = new TreeSet<>();
            for (int i = 0; i < 100; i++) {
                try {
                    if (get(fs.get(i)).offset() != i) contiguous = false;
                } catch (Exception e) { contiguous = false; failures.add(exName(e)); }
            }
            return map("offsetsAre0to99InSendOrder", contiguous, "failures", new ArrayList<>(failures));
        });
        step("endOffset", () -> consumer().endOffsets(List.of(tp("idem", 0))).get(tp("idem", 0)));
    }
}
