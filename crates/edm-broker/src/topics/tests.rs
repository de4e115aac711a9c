use super::*;

#[test]
fn topics_are_created_grown_and_deleted() {
    let topics = Topics::default();
    let order = topics
        .create("order", 1, Default::default())
        .expect("created");
    assert_eq!(order.partitions.len(), 1);
    assert_eq!(
        topics.create("order", 3, Default::default()).map(|_| ()),
        Err(TopicError::AlreadyExists("order".into()))
    );
    topics.grow("order", 3, true).expect("grown");
    assert_eq!(topics.get("order").map(|t| t.partitions.len()), Some(3));
    assert_eq!(
        topics.get("order").map(|t| t.id),
        Some(order.id),
        "same topic"
    );
    assert!(matches!(
        topics.grow("order", 2, true),
        Err(TopicError::InvalidPartitions(_))
    ));
    assert!(topics.partition("order", 2).is_some());
    assert!(topics.partition("order", 3).is_none());
    assert!(topics.partition("order", -1).is_none());
    topics.delete("order").expect("deleted");
    assert!(topics.get("order").is_none());
}

#[test]
fn names_follow_kafkas_rules() {
    let topics = Topics::default();
    for good in ["order", "lab-1a2b-inventory", "payment.dlq", "a_b"] {
        assert!(topics.check_new(good, 1).is_ok(), "{good}");
    }
    let long = "x".repeat(250);
    for bad in ["", ".", "..", "with space", "ünï", "a/b", long.as_str()] {
        assert!(
            matches!(
                topics.check_new(bad, 1),
                Err(TopicError::InvalidName { .. })
            ),
            "{bad}"
        );
    }
    assert!(topics.check_new("ok", 0).is_err());
    assert!(topics.check_new("ok", MAX_PARTITIONS + 1).is_err());
}
