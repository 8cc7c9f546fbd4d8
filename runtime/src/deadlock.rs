//! Deadlock detection for calls: who waits on whom while a call is out.
//!
//! A process that calls another waits for its reply, and its mailbox waits
//! with it. When the one it calls is itself waiting, directly or through
//! others, on the caller, nobody can answer: OTP lets both `gen_server:call`s
//! run into their timeouts. arbor keeps the graph of calls in flight (an
//! edge caller → callee for each) and refuses the call that would close a
//! cycle at once with [`CallError::Deadlock`](crate::CallError::Deadlock),
//! naming the processes in it; the calls already waiting then get their
//! answers as the refused caller goes on.
//!
//! Only processes are tracked (calls made from a process's own code, where
//! [`current_pid`](crate::current_pid) is known): a plain task cannot be
//! called, so it closes no cycle.

use std::collections::HashMap;
use std::sync::LazyLock;

use parking_lot::Mutex;

use crate::Pid;

/// Calls in flight: each caller and whom it waits on (a process may wait
/// on several at once, from joined futures).
static WAITING: LazyLock<Mutex<HashMap<Pid, Vec<Pid>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// How far a cycle is looked for: longer chains of calls are not followed
/// (and are left to their timeouts).
const MAX_DEPTH: usize = 64;

/// A call from `caller` to `callee` while it waits: dropping it (the reply
/// came, the call timed out or was given up) takes the edge away.
#[derive(Debug)]
pub(crate) struct Waiting {
    caller: Pid,
    callee: Pid,
}

/// Records that `caller` waits on `callee`, or returns the cycle the wait
/// would close: `caller`, `callee`, …, back to `caller`.
pub(crate) fn wait(caller: Pid, callee: Pid) -> Result<Waiting, Vec<Pid>> {
    let mut waiting = WAITING.lock();
    if let Some(path) = path_to(&waiting, callee, caller) {
        let mut cycle = Vec::with_capacity(path.len() + 1);
        cycle.push(caller);
        cycle.extend(path);
        drop(waiting);
        metrics::counter!("arbor_deadlocks_refused_total").increment(1);
        tracing::warn!(target: "arbor::runtime", cycle = %describe(&cycle), "call refused: it would deadlock");
        return Err(cycle);
    }
    waiting.entry(caller).or_default().push(callee);
    Ok(Waiting { caller, callee })
}

/// The processes from `from` to `to` along calls in flight, both ends
/// included, if `from` waits on `to` through them.
fn path_to(waiting: &HashMap<Pid, Vec<Pid>>, from: Pid, to: Pid) -> Option<Vec<Pid>> {
    if from == to {
        return Some(vec![from]);
    }
    // Depth-first, the path kept as a stack of (process, next edge).
    let mut path: Vec<(Pid, usize)> = vec![(from, 0)];
    while let Some(&mut (at, ref mut next)) = path.last_mut() {
        let edges = waiting.get(&at).map(Vec::as_slice).unwrap_or_default();
        let Some(&step) = edges.get(*next) else {
            path.pop();
            continue;
        };
        *next += 1;
        if step == to {
            let mut found: Vec<Pid> = path.iter().map(|(p, _)| *p).collect();
            found.push(to);
            return Some(found);
        }
        if path.len() < MAX_DEPTH && !path.iter().any(|(p, _)| *p == step) {
            path.push((step, 0));
        }
    }
    None
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut waiting = WAITING.lock();
        if let Some(callees) = waiting.get_mut(&self.caller) {
            if let Some(i) = callees.iter().position(|c| *c == self.callee) {
                callees.swap_remove(i);
            }
            if callees.is_empty() {
                waiting.remove(&self.caller);
            }
        }
    }
}

/// The cycle as people read it: `<0.5.0> → <0.7.0> → <0.5.0>`.
pub(crate) fn describe(cycle: &[Pid]) -> String {
    cycle
        .iter()
        .map(Pid::to_string)
        .collect::<Vec<_>>()
        .join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(n: u64) -> Pid {
        Pid::from_raw(n)
    }

    #[test]
    fn a_call_back_to_the_caller_closes_a_cycle() {
        let (a, b) = (pid(1_000_001), pid(1_000_002));
        let first = wait(a, b);
        assert!(first.is_ok());
        assert_eq!(wait(b, a).err(), Some(vec![b, a, b]));
        drop(first);
        // The first call answered: the second may wait.
        assert!(wait(b, a).is_ok());
    }

    #[test]
    fn a_longer_cycle_is_named_whole() {
        let (a, b, c) = (pid(1_000_011), pid(1_000_012), pid(1_000_013));
        let _ab = wait(a, b);
        let _bc = wait(b, c);
        assert_eq!(wait(c, a).err(), Some(vec![c, a, b, c]));
        // A chain that does not come back is no cycle.
        let d = pid(1_000_014);
        assert!(wait(c, d).is_ok());
        assert_eq!(describe(&[a, b, a]), format!("{a} → {b} → {a}"));
    }

    #[test]
    fn a_process_calling_itself_is_a_cycle_of_one() {
        let a = pid(1_000_021);
        assert_eq!(wait(a, a).err(), Some(vec![a, a]));
    }
}
