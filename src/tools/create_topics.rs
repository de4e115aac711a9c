//! `edm create-topics`: the course's `create_topic.py`, plus the dead-letter topics and the
//! payment consumer's decisions, so that nothing waits for a topic on a broker that
//! creates none by itself; prints what it did and what the broker now has.

use crate::config::KafkaArgs;
use crate::kafka::{Kafka, TopicChange};

/// `edm create-topics` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateTopicsArgs {
    /// Partitions per topic: new topics get this many (default 1), existing ones with
    /// fewer are grown to it (a topic never shrinks).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub partitions: Option<i32>,
    /// Replication factor of new topics (1 on a single broker).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub replication_factor: i32,
    /// Grow topics even while services read them (they then need a restart: until
    /// librdkafka's next metadata refresh, up to 5 minutes, they do not read the new
    /// partitions, and sagas there wait).
    #[arg(long)]
    pub while_services_run: bool,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// Creates or grows every topic edm uses and lists the broker's topics.
pub async fn command(args: CreateTopicsArgs) -> anyhow::Result<()> {
    let kafka = Kafka::new(&args.kafka);
    let names = kafka.topics.every_topic();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    if let Some(partitions) = args.partitions
        && !args.while_services_run
    {
        refuse_to_grow_under_readers(&kafka, partitions).await?;
    }
    let changes = kafka
        .ensure_topics(&names, args.partitions, args.replication_factor)
        .await?;
    for (name, change) in changes {
        match change {
            TopicChange::Created(n) => println!(" created  {name} ({n} partitions)"),
            TopicChange::Grown { from, to } => {
                println!("   grown  {name} from {from} to {to} partitions")
            }
            TopicChange::Kept(n) => println!("  exists  {name} ({n} partitions)"),
            TopicChange::Altered {
                partitions,
                configs,
                was,
            } => {
                let now: Vec<String> = configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!(
                    " altered  {name} ({partitions} partitions): {} (was {})",
                    now.join(", "),
                    was.join(", ")
                )
            }
        }
    }
    println!("\ntopics on {}:", kafka.servers());
    for topic in kafka.check_reachable().await? {
        println!("  {:<30} {} partition(s)", topic.name, topic.partitions);
    }
    Ok(())
}

/// Refuses to grow a topic that running services read: a consumer learns of new
/// partitions only at librdkafka's next metadata refresh (`topic.metadata.refresh.
/// interval.ms`, 5 minutes), while producers write to them at once, so sagas there would
/// wait minutes. Says which services to stop first.
async fn refuse_to_grow_under_readers(kafka: &Kafka, partitions: i32) -> anyhow::Result<()> {
    let growing: Vec<String> = kafka
        .check_reachable()
        .await?
        .into_iter()
        .filter(|t| (t.partitions as i64) < i64::from(partitions))
        .map(|t| t.name)
        .collect();
    let readers = super::doctor::groups::running_readers(kafka, &growing)
        .await
        .map_err(|error| anyhow::anyhow!("cannot read the consumer groups: {error}"))?;
    if readers.is_empty() {
        return Ok(());
    }
    let mut services: Vec<&str> = readers.iter().map(|r| r.service).collect();
    services.sort_unstable();
    services.dedup();
    let running: Vec<String> = readers
        .iter()
        .map(|r| {
            format!(
                "{} reads `{}` ({} member(s))",
                r.service, r.topic, r.members
            )
        })
        .collect();
    anyhow::bail!(
        "not growing topics that running services read: {}. They would learn of the new \
         partitions only at their next metadata refresh (up to 5 minutes), and sagas there \
         would wait until then. Stop {}, run this again, then start them; or grow now with \
         --while-services-run and restart them after",
        running.join("; "),
        services.join(", ")
    )
}
