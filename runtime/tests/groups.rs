//! Process groups.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use arbor_runtime::{ExitReason, Pid, ProcessGroups, ProcessRef};
use common::{err, exit_and_wait, start, Msg};
use parking_lot::Mutex;

fn g(s: &str) -> String {
    s.to_string()
}

fn pids(members: &[ProcessRef]) -> HashSet<Pid> {
    members.iter().map(ProcessRef::pid).collect()
}

#[tokio::test]
async fn join_leave_members_and_count() {
    let groups = ProcessGroups::new();
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;

    assert!(groups.join(g("room"), &a.process()));
    assert!(groups.join(g("room"), &b.process()));
    assert!(groups.join(g("other"), &a.process()));

    assert_eq!(groups.member_count(&g("room")), 2);
    assert_eq!(
        pids(&groups.members(&g("room"))),
        HashSet::from([a.pid(), b.pid()])
    );
    assert_eq!(pids(&groups.members(&g("other"))), HashSet::from([a.pid()]));
    assert_eq!(groups.member_count(&g("nobody")), 0);
    assert!(groups.members(&g("nobody")).is_empty());
    let mut names = groups.groups();
    names.sort();
    assert_eq!(names, vec![g("other"), g("room")]);

    assert!(groups.leave(&g("room"), &a.process()));
    assert!(
        !groups.leave(&g("room"), &a.process()),
        "no longer a member"
    );
    assert!(!groups.leave(&g("nobody"), &a.process()));
    assert_eq!(pids(&groups.members(&g("room"))), HashSet::from([b.pid()]));
    assert_eq!(
        groups.member_count(&g("other")),
        1,
        "other groups untouched"
    );

    assert!(groups.leave(&g("room"), &b.process()));
    assert_eq!(groups.member_count(&g("room")), 0);
    assert_eq!(groups.groups(), vec![g("other")], "an empty group is gone");

    // Rejoining after leaving works.
    assert!(groups.join(g("room"), &a.process()));
    assert_eq!(groups.member_count(&g("room")), 1);
}

/// OTP `pg`: "A process can join a group several times; it must then leave
/// the same number of times", and `get_members` lists it once per join.
#[tokio::test]
async fn joining_twice_is_two_memberships_and_leaving_once_removes_one() {
    let groups = ProcessGroups::new();
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    assert!(groups.join(g("room"), &a.process()));
    assert!(groups.join(g("room"), &a.process()), "a second membership");
    assert!(groups.join(g("room"), &b.process()));

    assert_eq!(groups.member_count(&g("room")), 3);
    let mut listed: Vec<Pid> = groups
        .members(&g("room"))
        .iter()
        .map(ProcessRef::pid)
        .collect();
    listed.sort();
    assert_eq!(listed, vec![a.pid(), a.pid(), b.pid()]);
    let mut visits = 0;
    groups.for_each_member(&g("room"), |p| visits += usize::from(p.pid() == a.pid()));
    assert_eq!(visits, 2, "fan-out reaches each membership");

    assert!(groups.leave(&g("room"), &a.process()));
    assert_eq!(groups.member_count(&g("room")), 2, "one membership left");
    assert_eq!(
        pids(&groups.members(&g("room"))),
        HashSet::from([a.pid(), b.pid()])
    );
    assert!(groups.leave(&g("room"), &a.process()));
    assert_eq!(pids(&groups.members(&g("room"))), HashSet::from([b.pid()]));
    assert!(
        !groups.leave(&g("room"), &a.process()),
        "no membership left"
    );

    // Every membership goes when the process exits.
    groups.join(g("room"), &b.process());
    exit_and_wait(&b.process(), err("gone")).await;
    assert_eq!(groups.member_count(&g("room")), 0);
    assert!(groups.groups().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_leaves_every_group_when_it_dies() {
    let groups = ProcessGroups::new();
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    groups.join(g("room"), &a.process());
    groups.join(g("room"), &b.process());
    groups.join(g("solo"), &a.process());

    assert_eq!(
        exit_and_wait(&a.process(), err("crash")).await,
        err("crash")
    );

    assert_eq!(groups.member_count(&g("room")), 1);
    assert_eq!(pids(&groups.members(&g("room"))), HashSet::from([b.pid()]));
    assert_eq!(groups.member_count(&g("solo")), 0);
    assert_eq!(groups.groups(), vec![g("room")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_never_lists_a_dead_process() {
    let groups = ProcessGroups::new();
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    let seen = Arc::new(Mutex::new(None));
    {
        // Runs after `a` has exited but before the group drops it.
        let groups = groups.clone();
        let seen = seen.clone();
        a.process()
            .on_exit(move |_| {
                let mut visited = Vec::new();
                groups.for_each_member(&g("room"), |p| visited.push(p.pid()));
                *seen.lock() = Some((pids(&groups.members(&g("room"))), visited));
            })
            .unwrap();
    }
    groups.join(g("room"), &a.process());
    groups.join(g("room"), &b.process());

    exit_and_wait(&a.process(), ExitReason::Killed).await;

    let (members, visited) = seen.lock().clone().expect("callback ran");
    assert_eq!(members, HashSet::from([b.pid()]));
    assert_eq!(visited, vec![b.pid()]);
}

#[tokio::test]
async fn a_dead_process_cannot_join() {
    let groups = ProcessGroups::new();
    let (a, _ea) = start().await;
    exit_and_wait(&a.process(), ExitReason::Shutdown).await;

    assert!(!groups.join(g("room"), &a.process()));
    assert_eq!(groups.member_count(&g("room")), 0);
    assert!(groups.members(&g("room")).is_empty());
    assert!(groups.groups().is_empty(), "no empty group is left behind");
}

#[tokio::test]
async fn for_each_member_visits_each_live_member_once() {
    let groups = ProcessGroups::with_shards(1);
    let mut actors = Vec::new();
    for _ in 0..10 {
        let (a, ea) = start().await;
        assert!(groups.join(g("subs"), &a.process()));
        actors.push((a, ea));
    }
    let mut visited = Vec::new();
    groups.for_each_member(&g("subs"), |p| visited.push(p.pid()));
    visited.sort();
    let mut expected: Vec<_> = actors.iter().map(|(a, _)| a.pid()).collect();
    expected.sort();
    assert_eq!(visited, expected);

    // Fan out a notification through the group.
    groups.for_each_member(&g("subs"), |p| {
        arbor_runtime::ActorRef::<Msg>::from_process(p)
            .unwrap()
            .try_send(Msg::Push(1))
            .unwrap();
    });
    for (a, _) in &actors {
        assert_eq!(a.call(Msg::Log, common::LIMIT).await.unwrap(), vec![1]);
    }

    let mut none = 0;
    groups.for_each_member(&g("empty"), |_| none += 1);
    assert_eq!(none, 0);
}

#[tokio::test]
async fn leaving_removes_the_exit_callback() {
    // After leaving and rejoining, a death removes the process once, and a
    // process that left is not affected by the group any more.
    let groups = ProcessGroups::new();
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    groups.join(g("room"), &a.process());
    groups.leave(&g("room"), &a.process());
    groups.join(g("room"), &b.process());

    exit_and_wait(&a.process(), ExitReason::Killed).await;
    assert_eq!(pids(&groups.members(&g("room"))), HashSet::from([b.pid()]));
}

/// A membership carries the value it joined with; a second join keeps the
/// first value, and the value goes with the member when it exits.
#[tokio::test]
async fn memberships_carry_the_value_they_joined_with() {
    let groups: ProcessGroups<String, &'static str> = ProcessGroups::new();
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    assert!(groups.join_with(g("room"), &a.process(), "a"));
    assert!(groups.join_with(g("room"), &b.process(), "b"));
    assert!(groups.join_with(g("room"), &a.process(), "ignored"));
    let mut seen = Vec::new();
    groups.for_each_value(&g("room"), |p, v| seen.push((p.pid(), *v)));
    seen.sort();
    let mut want = vec![(a.pid(), "a"), (a.pid(), "a"), (b.pid(), "b")];
    want.sort();
    assert_eq!(seen, want, "once per membership, with the first value");

    exit_and_wait(&b.process(), err("gone")).await;
    let mut left = Vec::new();
    groups.for_each_value(&g("room"), |_, v| left.push(*v));
    assert_eq!(left, vec!["a", "a"]);
}
