//! Command-line and environment configuration shared by every subcommand.
//!
//! Each address or credential is a flag with an environment-variable fallback and a default
//! that matches `compose/docker-compose.yml`, so `edm <subcommand>` works against the compose
//! stack with no flags at all.

use std::time::Duration;

use clap::Args;

/// Default Kafka bootstrap address of the compose stack.
pub const DEFAULT_BOOTSTRAP_SERVERS: &str = "127.0.0.1:19092";
/// Default DynamoDB endpoint of the compose stack.
pub const DEFAULT_DYNAMODB_ENDPOINT: &str = "http://127.0.0.1:4566";
/// Default MySQL URL of the compose stack.
pub const DEFAULT_MYSQL_URL: &str = "mysql://root:inventorypw@127.0.0.1:3306/inventory";
/// The compose command printed in error messages when a server is unreachable.
pub const START_HINT: &str = "docker compose -f compose/docker-compose.yml up -d --wait";

/// Where Kafka is and how to name the saga's topics and consumer groups.
#[derive(Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (host:port, comma separated).
    #[arg(long, env = "EDM_BOOTSTRAP_SERVERS", default_value = DEFAULT_BOOTSTRAP_SERVERS)]
    pub bootstrap_servers: String,

    /// Prefix for topic and consumer-group names (empty: the course's names `order`,
    /// `inventory`, `payment`). Lets several labs share one broker.
    #[arg(long, env = "EDM_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,

    /// Extra librdkafka property, `key=value`; repeat the flag for more. In the environment
    /// variable, separate several with commas. A value may hold commas itself
    /// (`debug=consumer,cgrp`).
    #[arg(short = 'X', long = "kafka-property", env = "EDM_KAFKA_PROPERTIES",
          value_parser = parse_properties)]
    pub properties: Vec<PropertyList>,
}

/// The librdkafka properties of one `-X` (or of `EDM_KAFKA_PROPERTIES`), in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyList(pub Vec<(String, String)>);

impl KafkaArgs {
    /// Settings for the given broker address with the course's topic names.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            topic_prefix: String::new(),
            properties: Vec::new(),
        }
    }

    /// Every `-X` property, in the order given.
    pub fn kafka_properties(&self) -> impl Iterator<Item = &(String, String)> {
        self.properties.iter().flat_map(|list| &list.0)
    }

    /// Adds `key=value`, as `-X key=value` does.
    pub fn set_property(&mut self, key: &str, value: &str) {
        self.properties
            .push(PropertyList(vec![(key.to_string(), value.to_string())]));
    }
}

/// Where the stock is: MySQL, as in the course, or a SQLite file.
#[derive(Args, Debug, Clone)]
pub struct InventoryStoreArgs {
    /// The inventory database: a MySQL URL (`mysql://user:password@host:port/database`),
    /// or `sqlite://FILE` for a SQLite file (no server needed).
    #[arg(long = "mysql-url", value_name = "URL", env = "EDM_MYSQL_URL", default_value = DEFAULT_MYSQL_URL)]
    pub inventory_store: String,

    /// Maximum number of pooled MySQL connections.
    #[arg(long, env = "EDM_MYSQL_POOL_SIZE", default_value_t = 5)]
    pub mysql_pool_size: u32,
}

impl InventoryStoreArgs {
    /// Settings for the given URL with the default pool size.
    pub fn new(inventory_store: impl Into<String>) -> Self {
        Self {
            inventory_store: inventory_store.into(),
            mysql_pool_size: 5,
        }
    }
}

/// Where the orders are: DynamoDB, as in the course, or a SQLite file; and which table
/// holds them.
#[derive(Args, Debug, Clone)]
pub struct OrderStoreArgs {
    /// The order store: a DynamoDB endpoint URL, `aws` for the real AWS endpoint of the
    /// region (credentials then come from the normal AWS chain: environment, profile,
    /// instance role), or `sqlite://FILE` for a SQLite file (no server needed).
    #[arg(long = "dynamodb-endpoint", value_name = "URL", env = "EDM_DYNAMODB_ENDPOINT", default_value = DEFAULT_DYNAMODB_ENDPOINT)]
    pub order_store: String,

    /// AWS region of the DynamoDB table.
    #[arg(long, env = "EDM_DYNAMODB_REGION", default_value = "us-east-2")]
    pub dynamodb_region: String,

    /// Name of the DynamoDB table that holds the orders.
    #[arg(long, env = "EDM_ORDERS_TABLE", default_value = "order")]
    pub orders_table: String,

    /// Most DynamoDB requests in flight at once, which is also the most HTTP connections
    /// the client opens (the DynamoDB counterpart of `--mysql-pool-size`).
    #[arg(long, env = "EDM_DYNAMODB_CONNECTIONS", default_value_t = DEFAULT_DYNAMODB_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub dynamodb_connections: u32,
}

/// Default of `--dynamodb-connections`: as many as the order consumer updates at once.
pub const DEFAULT_DYNAMODB_CONNECTIONS: u32 = 64;

impl OrderStoreArgs {
    /// Settings for a local endpoint with the course's region and table name.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            order_store: endpoint.into(),
            dynamodb_region: "us-east-2".into(),
            orders_table: "order".into(),
            dynamodb_connections: DEFAULT_DYNAMODB_CONNECTIONS,
        }
    }

    /// The endpoint override, or `None` for real AWS.
    pub fn endpoint_override(&self) -> Option<&str> {
        let endpoint = self.order_store.trim();
        (!endpoint.is_empty() && !endpoint.eq_ignore_ascii_case("aws")).then_some(endpoint)
    }
}

/// librdkafka properties that edm's guarantees rest on, with why: `-X` may not change them.
const SAFETY_PROPERTIES: [(&str, &str); 4] = [
    (
        "enable.auto.commit",
        "offsets are committed only after an event's effect and outgoing events are stored",
    ),
    (
        "enable.auto.offset.store",
        "an offset is stored only once its event is fully handled",
    ),
    (
        "enable.idempotence",
        "the producer's own retries must never store an event twice or out of order",
    ),
    (
        "isolation.level",
        "consumers must never act on events of an aborted transaction",
    ),
];

/// Parses `key=value[,key=value…]`: the properties of one `-X`, or of
/// `EDM_KAFKA_PROPERTIES`. A comma starts a new property only where `key=` follows it, so
/// that librdkafka's list values (`debug=consumer,cgrp`) stay whole.
pub fn parse_properties(raw: &str) -> Result<PropertyList, String> {
    let mut pieces: Vec<String> = Vec::new();
    for piece in raw.split(',').filter(|piece| !piece.trim().is_empty()) {
        match pieces.last_mut() {
            Some(last) if !piece.contains('=') => {
                last.push(',');
                last.push_str(piece);
            }
            _ => pieces.push(piece.to_string()),
        }
    }
    if pieces.is_empty() {
        return parse_property(raw).map(|pair| PropertyList(vec![pair]));
    }
    pieces
        .iter()
        .map(|piece| parse_property(piece))
        .collect::<Result<_, _>>()
        .map(PropertyList)
}

/// Parses a `key=value` librdkafka property; refuses the ones edm's guarantees rest on.
fn parse_property(raw: &str) -> Result<(String, String), String> {
    let (key, value) = match raw.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => (key.trim(), value.trim()),
        _ => {
            return Err(format!(
                "expected key=value (a librdkafka property such as session.timeout.ms=6000), got `{raw}`"
            ));
        }
    };
    if let Some((_, why)) = SAFETY_PROPERTIES.iter().find(|(safe, _)| *safe == key) {
        return Err(format!(
            "`{key}` is set by edm and cannot be changed: {why}"
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

/// Parses a `true`/`false` flag value the way the course's `payment_consumer.py True|False` did,
/// accepting any case as well as `1`/`0` and `yes`/`no`.
pub fn parse_bool_flag(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "ok" => Ok(true),
        "false" | "0" | "no" | "n" | "fail" => Ok(false),
        _ => Err(format!("expected true or false, got `{raw}`")),
    }
}

/// Parses a duration in seconds (fractions allowed).
pub fn parse_seconds(raw: &str) -> Result<Duration, String> {
    raw.trim()
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("expected a number of seconds, got `{raw}`"))
}

/// Parses a fraction between 0 and 1.
pub fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("expected a fraction from 0.0 to 1.0, got `{raw}`")),
    }
}

/// Parses a positive number of orders per second.
pub fn parse_orders_per_second(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "expected a positive number of orders per second, got `{raw}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_needs_key_and_value() {
        assert_eq!(
            parse_property("session.timeout.ms=6000"),
            Ok(("session.timeout.ms".into(), "6000".into()))
        );
        assert_eq!(parse_property("a= b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_property("no-equals-sign").is_err());
        assert!(parse_property("=value").is_err());
        for key in [
            "enable.auto.commit",
            "enable.auto.offset.store",
            "enable.idempotence",
            "isolation.level",
        ] {
            let refused = parse_property(&format!("{key}=whatever"));
            assert!(
                refused.as_ref().is_err_and(|e| e.contains(key)),
                "{key}: {refused:?}"
            );
        }
    }

    #[test]
    fn a_comma_starts_a_property_only_where_a_key_follows() {
        let pairs = |raw: &str| parse_properties(raw).map(|list| list.0);
        assert_eq!(
            pairs("debug=consumer,cgrp,fetch"),
            Ok(vec![("debug".into(), "consumer,cgrp,fetch".into())])
        );
        assert_eq!(
            pairs("session.timeout.ms=6000,debug=broker,topic,linger.ms=1"),
            Ok(vec![
                ("session.timeout.ms".into(), "6000".into()),
                ("debug".into(), "broker,topic".into()),
                ("linger.ms".into(), "1".into()),
            ])
        );
        assert!(pairs("no-equals-sign,a=b").is_err());
        assert!(pairs("a=b,enable.auto.commit=true").is_err());
        assert!(pairs("").is_err());
        assert_eq!(pairs("a=1,"), Ok(vec![("a".into(), "1".into())]));
    }

    #[test]
    fn bool_flag_accepts_the_course_spelling() {
        assert_eq!(parse_bool_flag("True"), Ok(true));
        assert_eq!(parse_bool_flag("False"), Ok(false));
        assert_eq!(parse_bool_flag(" false "), Ok(false));
        assert!(parse_bool_flag("maybe").is_err());
    }

    #[test]
    fn aws_means_no_endpoint_override() {
        let mut args = OrderStoreArgs::new("http://127.0.0.1:4566");
        assert_eq!(args.endpoint_override(), Some("http://127.0.0.1:4566"));
        args.order_store = "aws".into();
        assert_eq!(args.endpoint_override(), None);
        args.order_store = String::new();
        assert_eq!(args.endpoint_override(), None);
    }

    #[test]
    fn seconds_and_rates_parse() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        assert!(parse_rate("1.5").is_err());
        assert!(parse_rate("-0.1").is_err());
    }
}
