//! The sharded name registry.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arbor_runtime::{ActorRef, ExitReason, RegistryError, ShardedRegistry};
use common::{err, exit_and_wait, exited, start, Msg, LIMIT};
use parking_lot::Mutex;

fn name(s: &str) -> String {
    s.to_string()
}

#[tokio::test]
async fn register_whereis_unregister() {
    let reg = ShardedRegistry::new();
    assert!(reg.is_empty());
    let (a, _ea) = start().await;

    reg.register(name("svc"), &a.process()).unwrap();
    assert_eq!(reg.len(), 1);
    assert_eq!(reg.whereis(&name("svc")), Some(a.process()));
    assert_eq!(reg.whereis(&name("other")), None);

    let typed: ActorRef<Msg> = reg.whereis_actor(&name("svc")).expect("typed lookup");
    assert_eq!(typed, a);
    assert!(reg.whereis_actor::<u64>(&name("svc")).is_none());

    assert_eq!(reg.unregister(&name("svc")), Some(a.process()));
    assert_eq!(reg.unregister(&name("svc")), None);
    assert_eq!(reg.whereis(&name("svc")), None);
    assert!(reg.is_empty());
    assert!(a.is_alive(), "unregistering does not touch the process");
}

#[tokio::test]
async fn a_live_name_cannot_be_taken_twice() {
    let reg = ShardedRegistry::new();
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    reg.register(name("svc"), &a.process()).unwrap();

    match reg.register(name("svc"), &b.process()) {
        Err(RegistryError::AlreadyRegistered { name, holder }) => {
            assert_eq!(holder, a.pid());
            assert!(name.contains("svc"), "{name}");
        }
        other => panic!("expected AlreadyRegistered, got {other:?}"),
    }
    // The same process cannot register the same name twice either.
    assert!(matches!(
        reg.register(name("svc"), &a.process()),
        Err(RegistryError::AlreadyRegistered { holder, .. }) if holder == a.pid()
    ));
    assert_eq!(reg.whereis(&name("svc")), Some(a.process()));

    // One process may hold several names.
    reg.register(name("alias"), &a.process()).unwrap();
    assert_eq!(reg.whereis(&name("alias")), Some(a.process()));
    assert_eq!(reg.len(), 2);
}

#[tokio::test]
async fn a_dead_process_cannot_register() {
    let reg = ShardedRegistry::new();
    let (a, _ea) = start().await;
    a.process().kill();
    exited(&a.process()).await;

    assert_eq!(
        reg.register(name("svc"), &a.process()),
        Err(RegistryError::NotAlive(a.pid()))
    );
    assert_eq!(reg.whereis(&name("svc")), None);
    assert!(reg.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entry_disappears_when_the_process_dies() {
    let reg = ShardedRegistry::new();
    let (a, _ea) = start().await;
    reg.register(name("svc"), &a.process()).unwrap();
    reg.register(name("alias"), &a.process()).unwrap();

    // The registry's exit callbacks were registered before this monitor,
    // so they have run by the time it fires.
    let down = a.process().monitor();
    a.try_send(Msg::Fail(err("crash"))).unwrap();
    assert_eq!(down.await.reason, err("crash"));

    assert_eq!(reg.whereis(&name("svc")), None);
    assert_eq!(reg.whereis(&name("alias")), None);
    assert!(reg.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_never_returns_a_dead_process() {
    let reg = ShardedRegistry::new();

    // Immediately after a kill: either still the live process, or nothing.
    for _ in 0..100 {
        let (a, _ea) = start().await;
        reg.register(name("svc"), &a.process()).unwrap();
        a.process().kill();
        if let Some(found) = reg.whereis(&name("svc")) {
            assert_eq!(found.pid(), a.pid());
        }
        exited(&a.process()).await;
        assert_eq!(reg.whereis(&name("svc")), None);
    }

    // In the window between the exit and the removal of the entry: an exit
    // callback registered before the registration runs in that window.
    let (a, _ea) = start().await;
    let seen = Arc::new(Mutex::new(None));
    let ran = Arc::new(AtomicBool::new(false));
    {
        let reg = reg.clone();
        let seen = seen.clone();
        let ran = ran.clone();
        a.process()
            .on_exit(move |_| {
                *seen.lock() = Some(reg.whereis(&name("svc")));
                ran.store(true, Ordering::SeqCst);
            })
            .unwrap();
    }
    reg.register(name("svc"), &a.process()).unwrap();
    exit_and_wait(&a.process(), ExitReason::Killed).await;
    assert!(ran.load(Ordering::SeqCst));
    assert_eq!(*seen.lock(), Some(None), "a dead process was returned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_can_take_the_name_of_a_dead_one() {
    let reg = ShardedRegistry::new();
    let (old, _eo) = start().await;
    reg.register(name("svc"), &old.process()).unwrap();
    old.process().kill();
    exited(&old.process()).await;

    let (new, _en) = start().await;
    reg.register(name("svc"), &new.process()).unwrap();
    assert_eq!(reg.whereis(&name("svc")), Some(new.process()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_can_be_retaken_before_the_stale_entry_is_removed() {
    // The restart case: the new process registers in the window between the
    // old one's exit and the removal of its entry. The late removal must not
    // take the new registration with it.
    let reg = ShardedRegistry::new();
    let (old, _eo) = start().await;
    let (new, _en) = start().await;
    let result = Arc::new(Mutex::new(None));
    {
        let reg = reg.clone();
        let new = new.process();
        let result = result.clone();
        old.process()
            .on_exit(move |_| {
                *result.lock() = Some(reg.register(name("svc"), &new));
            })
            .unwrap();
    }
    reg.register(name("svc"), &old.process()).unwrap();
    exit_and_wait(&old.process(), err("restart me")).await;

    assert_eq!(*result.lock(), Some(Ok(())));
    assert_eq!(reg.whereis(&name("svc")), Some(new.process()));
    assert_eq!(reg.len(), 1);

    // And the new entry still goes away with the new process.
    exit_and_wait(&new.process(), ExitReason::Killed).await;
    assert_eq!(reg.whereis(&name("svc")), None);
    assert!(reg.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_name_is_not_removed_from_its_next_holder() {
    let reg = ShardedRegistry::new();
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    reg.register(name("svc"), &a.process()).unwrap();
    reg.unregister(&name("svc"));
    reg.register(name("svc"), &b.process()).unwrap();

    a.process().kill();
    exited(&a.process()).await;
    assert_eq!(reg.whereis(&name("svc")), Some(b.process()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_hundred_thousand_names() {
    const NAMES: usize = 100_000;
    const PROCESSES: usize = 1_000;
    let reg: ShardedRegistry<String> = ShardedRegistry::new();
    let mut actors = Vec::with_capacity(PROCESSES);
    for _ in 0..PROCESSES {
        actors.push(start().await);
    }

    // Registered and looked up from several tasks at once.
    let mut tasks = Vec::new();
    for part in 0..4 {
        let reg = reg.clone();
        let processes: Vec<_> = actors.iter().map(|(a, _)| a.process()).collect();
        tasks.push(tokio::spawn(async move {
            for i in (part..NAMES).step_by(4) {
                reg.register(format!("session-{i}"), &processes[i % PROCESSES])
                    .unwrap();
            }
            for i in (part..NAMES).step_by(4) {
                let found = reg.whereis(&format!("session-{i}")).expect("registered");
                assert_eq!(found.pid(), processes[i % PROCESSES].pid());
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(LIMIT, t).await.unwrap().unwrap();
    }
    assert_eq!(reg.len(), NAMES);

    // The 100 names of one process go when it dies.
    let (victim, _) = &actors[7];
    exit_and_wait(&victim.process(), ExitReason::Killed).await;
    assert_eq!(reg.len(), NAMES - NAMES / PROCESSES);
    assert!(reg.whereis(&"session-7".to_string()).is_none());
    assert!(reg.whereis(&"session-1007".to_string()).is_none());
    assert!(reg.whereis(&"session-1008".to_string()).is_some());

    reg.clear();
    assert!(reg.is_empty());
    for (a, _) in &actors {
        a.process().stop(ExitReason::Shutdown);
    }
}

#[tokio::test]
async fn clear_removes_every_name_and_their_exit_callbacks() {
    let reg = ShardedRegistry::new();
    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    reg.register(name("a"), &a.process()).unwrap();
    reg.register(name("b"), &b.process()).unwrap();

    reg.clear();
    assert!(reg.is_empty());
    assert_eq!(reg.whereis(&name("a")), None);

    // After clear, the name is free, and the old holder's death does not
    // remove the new entry.
    reg.register(name("a"), &b.process()).unwrap();
    a.process().kill();
    exited(&a.process()).await;
    assert_eq!(reg.whereis(&name("a")), Some(b.process()));
}

#[tokio::test]
async fn a_single_shard_works() {
    let reg = ShardedRegistry::with_shards(1);
    assert_eq!(reg.shards(), 1);
    assert_eq!(ShardedRegistry::<String>::with_shards(0).shards(), 1);
    assert_eq!(ShardedRegistry::<String>::new().shards(), 64);

    let (a, _ea) = start().await;
    let (b, _eb) = start().await;
    for i in 0..1000 {
        let p = if i % 2 == 0 { a.process() } else { b.process() };
        reg.register(format!("n{i}"), &p).unwrap();
    }
    assert_eq!(reg.len(), 1000);
    a.process().kill();
    exited(&a.process()).await;
    assert_eq!(reg.len(), 500);
    for i in 0..1000 {
        let found = reg.whereis(&format!("n{i}"));
        if i % 2 == 0 {
            assert_eq!(found, None);
        } else {
            assert_eq!(found, Some(b.process()));
        }
    }
}

#[tokio::test]
async fn keys_need_not_be_strings() {
    let reg: ShardedRegistry<(u32, &'static str)> = ShardedRegistry::with_shards(4);
    let (a, _ea) = start().await;
    reg.register((1, "x"), &a.process()).unwrap();
    assert_eq!(reg.whereis(&(1, "x")), Some(a.process()));
    assert_eq!(reg.whereis(&(2, "x")), None);
}

#[tokio::test]
async fn registry_handles_share_state_and_a_dropped_registry_is_harmless() {
    let (a, _ea) = start().await;
    {
        let reg = ShardedRegistry::new();
        let clone = reg.clone();
        reg.register(name("svc"), &a.process()).unwrap();
        assert_eq!(clone.whereis(&name("svc")), Some(a.process()));
    }
    // The registry is gone; the process's exit callback must cope.
    a.process().kill();
    assert_eq!(exited(&a.process()).await, ExitReason::Killed);
}
