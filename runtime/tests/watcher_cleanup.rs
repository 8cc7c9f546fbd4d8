//! Removed monitors and exit callbacks really are removed: a long-lived
//! process does not accumulate them. Measured with a counting allocator
//! (per thread, on a current-thread runtime, so other tests do not interfere).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
// The counting allocator needs `unsafe impl GlobalAlloc`.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use arbor_runtime::{ExitReason, ProcessGroups, ShardedRegistry};
use common::{exit_and_wait, start};
use futures_util::FutureExt;

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

const ROUNDS: usize = 10_000;
/// Far less than one leaked watcher per round (each is a boxed closure and
/// a vector slot, tens of bytes at least).
const SLACK: isize = 4096;

/// Runs `round` many times and returns how much memory it left behind.
fn growth(mut round: impl FnMut()) -> isize {
    // Warm up: let vectors and maps reach their steady capacity.
    for _ in 0..100 {
        round();
    }
    let before = live();
    for _ in 0..ROUNDS {
        round();
    }
    live() - before
}

#[tokio::test]
async fn dropped_monitors_and_cancelled_waits_are_removed() {
    let (a, _ea) = start().await;
    let p = a.process();

    let grew = growth(|| drop(p.monitor()));
    assert!(grew < SLACK, "dropped monitors leaked {grew} bytes");

    let grew = growth(|| assert!(p.wait().now_or_never().is_none()));
    assert!(grew < SLACK, "cancelled waits leaked {grew} bytes");

    let grew = growth(|| {
        let watch = p.on_exit(|_| {}).unwrap();
        assert!(p.demonitor(watch));
    });
    assert!(grew < SLACK, "demonitored callbacks leaked {grew} bytes");

    // Sanity check of the measurement itself: monitors that are kept do
    // show up.
    let mut kept = Vec::with_capacity(ROUNDS + 100);
    let grew = growth(|| kept.push(p.monitor()));
    assert!(grew > SLACK * 4, "measurement is broken: {grew}");
    drop(kept);

    assert_eq!(
        exit_and_wait(&p, ExitReason::Killed).await,
        ExitReason::Killed
    );
}

#[tokio::test]
async fn unregistering_removes_the_registry_exit_callback() {
    let (a, _ea) = start().await;
    let p = a.process();
    let reg = ShardedRegistry::with_shards(1);
    let name = "svc".to_string();

    let grew = growth(|| {
        reg.register(name.clone(), &p).unwrap();
        assert_eq!(reg.unregister(&name), Some(p.clone()));
    });
    assert!(grew < SLACK, "register/unregister leaked {grew} bytes");

    let grew = growth(|| {
        reg.register(name.clone(), &p).unwrap();
        reg.clear();
    });
    assert!(grew < SLACK, "register/clear leaked {grew} bytes");
}

#[tokio::test]
async fn leaving_a_group_removes_its_exit_callback() {
    let (a, _ea) = start().await;
    let p = a.process();
    let groups = ProcessGroups::with_shards(1);
    let group = "room".to_string();

    let grew = growth(|| {
        assert!(groups.join(group.clone(), &p));
        assert!(groups.leave(&group, &p));
    });
    assert!(grew < SLACK, "join/leave leaked {grew} bytes");
}
