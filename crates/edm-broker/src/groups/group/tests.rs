//! The group state machine, step by step, with the clock in the test's hands.

use super::*;

const SESSION: Duration = Duration::from_secs(10);

fn request(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        group_instance_id: None,
        client_id: "rdkafka".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: SESSION,
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("meta-{member_id}"))))
            .collect(),
        require_known_member_id: true,
    }
}

/// The answer, which must be there already.
fn ready<T>(answer: Answer<T>) -> T {
    match answer {
        Answer::Now(result) => result,
        Answer::Later(mut waiting) => waiting.try_recv().expect("answered already"),
    }
}

fn waiting<T>(answer: Answer<T>) -> oneshot::Receiver<T> {
    match answer {
        Answer::Later(waiting) => waiting,
        Answer::Now(_) => panic!("answered at once"),
    }
}

/// A member id handed out by a first JoinGroup.
fn member_id(group: &mut Group, now: Instant) -> String {
    let first = ready(group.join(request("", &["range"]), now));
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    first.member_id
}

/// A group whose one member has joined and synced (generation 1): returns it and its id.
fn settled_with_one_member(now: Instant) -> (Group, String) {
    let mut group = Group::new();
    let a = member_id(&mut group, now);
    ready(group.join(request(&a, &["range"]), now));
    ready(group.sync(&a, None, 1, (None, None), vec![], now));
    (group, a)
}

#[test]
fn a_lone_member_joins_leads_and_gets_its_assignment() {
    let now = Instant::now();
    let mut group = Group::new();
    let id = member_id(&mut group, now);
    let joined = ready(group.join(request(&id, &["range"]), now));
    assert_eq!(joined.error, None);
    assert_eq!(
        (joined.generation, joined.leader.as_str()),
        (1, id.as_str())
    );
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(joined.members.len(), 1, "the leader sees every member");

    let synced = ready(group.sync(
        &id,
        None,
        1,
        (None, None),
        vec![(id.clone(), Bytes::from_static(b"all"))],
        now,
    ));
    assert_eq!(synced.error, None);
    assert_eq!(&synced.assignment[..], b"all");
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.heartbeat(&id, None, 1, now), None);
    assert_eq!(
        group.heartbeat(&id, None, 0, now),
        Some(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        group.heartbeat("stranger", None, 1, now),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn a_second_member_makes_the_first_join_again() {
    let now = Instant::now();
    let mut group = Group::new();
    let a = member_id(&mut group, now);
    ready(group.join(request(&a, &["range"]), now));
    ready(group.sync(
        &a,
        None,
        1,
        (None, None),
        vec![(a.clone(), Bytes::new())],
        now,
    ));

    let b = member_id(&mut group, now);
    let mut b_joined = waiting(group.join(request(&b, &["range"]), now));
    assert!(b_joined.try_recv().is_err(), "waits for a");
    assert_eq!(
        group.heartbeat(&a, None, 1, now),
        Some(ResponseError::RebalanceInProgress)
    );

    let a_joined = ready(group.join(request(&a, &["range"]), now));
    let b_joined = b_joined.try_recv().expect("b answered once a joined");
    assert_eq!((a_joined.generation, b_joined.generation), (2, 2));
    assert_eq!(a_joined.leader, a, "the leader stays");
    assert_eq!(a_joined.members.len(), 2);
    assert!(b_joined.members.is_empty(), "followers see no members");

    // The follower's SyncGroup waits for the leader's.
    let mut b_synced = waiting(group.sync(&b, None, 2, (None, None), vec![], now));
    assert!(b_synced.try_recv().is_err());
    let assignments = vec![
        (a.clone(), Bytes::from_static(b"p0")),
        (b.clone(), Bytes::from_static(b"p1")),
    ];
    let a_synced = ready(group.sync(&a, None, 2, (None, None), assignments, now));
    assert_eq!(&a_synced.assignment[..], b"p0");
    assert_eq!(
        &b_synced.try_recv().expect("b synced").assignment[..],
        b"p1"
    );
}

#[test]
fn a_member_that_leaves_lets_the_rebalance_finish() {
    let now = Instant::now();
    let (mut group, a) = settled_with_one_member(now);
    let b = member_id(&mut group, now);
    let mut b_joined = waiting(group.join(request(&b, &["range"]), now));

    // a is stopped (Ctrl-C) instead of joining again: its LeaveGroup ends the wait.
    assert_eq!(group.leave(&a, None, now), None);
    let b_joined = b_joined.try_recv().expect("answered");
    assert_eq!(
        (b_joined.generation, b_joined.leader.as_str()),
        (2, b.as_str())
    );
    assert_eq!(
        group.leave(&a, None, now),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn a_member_gone_while_joining_is_dropped_at_the_next_tick() {
    let now = Instant::now();
    let (mut group, a) = settled_with_one_member(now);
    let b = member_id(&mut group, now);
    let b_joined = waiting(group.join(request(&b, &["range"]), now));
    // b's process is killed while its JoinGroup waits: its connection (and so the channel
    // its answer would go to) closes.
    drop(b_joined);
    group.tick(now);
    assert_eq!(group.members.len(), 1, "b is gone");
    // a, joining again as asked, gets the group to itself.
    let a_joined = ready(group.join(request(&a, &["range"]), now));
    assert_eq!(a_joined.members.len(), 1);
}

#[test]
fn a_silent_member_is_dropped_after_its_session() {
    let start = Instant::now();
    // Its one member is killed (kill -9): no heartbeat, no LeaveGroup.
    let (mut group, _killed) = settled_with_one_member(start);
    let b = member_id(&mut group, start);
    let mut b_joined = waiting(group.join(request(&b, &["range"]), start));

    group.tick(start + SESSION / 2);
    assert!(b_joined.try_recv().is_err(), "a's session still runs");
    group.tick(start + SESSION + Duration::from_millis(1));
    let b_joined = b_joined
        .try_recv()
        .expect("answered once a's session ran out");
    assert_eq!(b_joined.leader, b);
    assert_eq!(b_joined.members.len(), 1);
}

#[test]
fn a_rebalance_ends_at_its_deadline_without_the_late_members() {
    let start = Instant::now();
    let (mut group, a) = settled_with_one_member(start);
    let b = member_id(&mut group, start);
    let mut b_joined = waiting(group.join(request(&b, &["range"]), start));
    // a heartbeats (it is alive) but never joins again.
    for second in 1..30 {
        let now = start + Duration::from_secs(second);
        assert_eq!(
            group.heartbeat(&a, None, 1, now),
            Some(ResponseError::RebalanceInProgress)
        );
        group.tick(now);
    }
    assert!(b_joined.try_recv().is_err());
    group.tick(start + Duration::from_secs(31));
    assert_eq!(b_joined.try_recv().expect("deadline").members.len(), 1);
}

#[test]
fn the_strategy_is_one_every_member_supports() {
    let now = Instant::now();
    let mut group = Group::new();
    let a = member_id(&mut group, now);
    ready(group.join(request(&a, &["cooperative-sticky", "range"]), now));
    ready(group.sync(&a, None, 1, (None, None), vec![], now));
    let b = member_id(&mut group, now);
    let _b = waiting(group.join(request(&b, &["range", "roundrobin"]), now));
    let a_joined = ready(group.join(request(&a, &["cooperative-sticky", "range"]), now));
    assert_eq!(a_joined.protocol_name.as_deref(), Some("range"));

    let c = member_id(&mut group, now);
    let refused = ready(group.join(request(&c, &["roundrobin"]), now));
    assert_eq!(
        refused.error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
}

#[test]
fn an_unchanged_follower_rejoining_a_stable_group_keeps_the_generation() {
    let now = Instant::now();
    let (mut group, a) = settled_with_one_member(now);
    let b = member_id(&mut group, now);
    let mut b_joined = waiting(group.join(request(&b, &["range"]), now));
    ready(group.join(request(&a, &["range"]), now));
    b_joined.try_recv().expect("joined");
    ready(group.sync(&a, None, 2, (None, None), vec![], now));
    assert_eq!(group.state, GroupState::Stable);
    let again = ready(group.join(request(&b, &["range"]), now));
    assert_eq!((again.error, again.generation), (None, 2));
    assert_eq!(group.state, GroupState::Stable);
}

#[test]
fn an_unknown_member_id_is_refused() {
    let now = Instant::now();
    let mut group = Group::new();
    let refused = ready(group.join(request("made-up", &["range"]), now));
    assert_eq!(refused.error, Some(ResponseError::UnknownMemberId));
    let mut old = request("", &["range"]);
    old.require_known_member_id = false;
    let joined = ready(group.join(old, now));
    assert_eq!(joined.error, None, "JoinGroup before v4 joins at once");
}

fn static_request(instance: &str, member_id: &str) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance.to_string()),
        ..request(member_id, &["range"])
    }
}

#[test]
fn a_static_member_restarted_takes_its_place_without_a_rebalance() {
    let now = Instant::now();
    let mut group = Group::new();
    // A static member needs no second round for its member id.
    let first = waiting(group.join(static_request("i-1", ""), now));
    let mut first = first;
    let a = first.try_recv().expect("joined").member_id;
    let assignment = Bytes::from_static(b"partitions of i-1");
    ready(group.sync(
        &a,
        Some("i-1"),
        1,
        (None, None),
        vec![(a.clone(), assignment.clone())],
        now,
    ));
    assert_eq!(group.state, GroupState::Stable);

    // The process is killed (no LeaveGroup) and started again: same instance, new id.
    let again = ready(group.join(static_request("i-1", ""), now));
    assert_eq!(again.error, None);
    assert_eq!(again.generation, 1, "no rebalance");
    assert_ne!(again.member_id, a);
    assert!(
        again.skip_assignment,
        "it led the group: the assignment stands"
    );
    let synced = ready(group.sync(&again.member_id, Some("i-1"), 1, (None, None), vec![], now));
    assert_eq!(synced.assignment, assignment);

    // The old process, should it still run, is fenced.
    assert_eq!(
        group.heartbeat(&a, Some("i-1"), 1, now),
        Some(ResponseError::FencedInstanceId)
    );
    assert_eq!(group.heartbeat(&again.member_id, Some("i-1"), 1, now), None);
    // An admin removes it by instance id alone.
    assert_eq!(group.leave("", Some("i-1"), now), None);
    assert!(group.members.is_empty());
}
