//! Calls that would wait on each other for ever: A calls B while B calls A
//! (or longer cycles) is refused at once with `CallError::Deadlock` naming
//! the cycle, instead of both calls waiting out their timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use arbor_runtime::{spawn, Actor, ActorRef, CallError, Context, Flow, Pid, Reply};

/// Long enough that a timeout would show.
const PATIENT: Duration = Duration::from_secs(10);

enum Msg {
    /// Call `next` with `Relay(rest)`; reply with what came back.
    Relay(Vec<ActorRef<Msg>>, Reply<Result<String, CallError>>),
}

struct Relayer;

impl Actor for Relayer {
    type Msg = Msg;

    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Flow {
        match msg {
            Msg::Relay(mut chain, reply) => {
                let answer = if chain.is_empty() {
                    Ok("end".to_string())
                } else {
                    let next = chain.remove(0);
                    match next.call(|r| Msg::Relay(chain, r), PATIENT).await {
                        // What the next one said, or how its call failed.
                        Ok(inner) => inner,
                        Err(e) => Err(e),
                    }
                };
                reply.send(answer);
            }
        }
        Ok(())
    }
}

async fn relayers(n: usize) -> Vec<ActorRef<Msg>> {
    let mut all = Vec::new();
    for _ in 0..n {
        all.push(spawn(Relayer).await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_b_while_b_calls_a_is_refused_at_once_naming_both() {
    let ab = relayers(2).await;
    let (a, b) = (ab[0].clone(), ab[1].clone());
    let started = Instant::now();
    // A calls B, which calls A back: A is still waiting on B.
    let answer = a
        .call(|r| Msg::Relay(vec![b.clone(), a.clone()], r), PATIENT)
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "not a timeout");
    let pids: Vec<Pid> = vec![b.pid(), a.pid(), b.pid()];
    assert_eq!(answer, Err(CallError::Deadlock(pids)));
    let shown = answer.unwrap_err().to_string();
    assert!(
        shown.contains(&format!("{} → {} → {}", b.pid(), a.pid(), b.pid())),
        "{shown}"
    );
    // Both go on serving.
    assert_eq!(
        a.call(|r| Msg::Relay(vec![b.clone()], r), PATIENT)
            .await
            .unwrap(),
        Ok("end".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_cycle_is_named_whole_and_a_chain_is_not_a_cycle() {
    let abc = relayers(3).await;
    let (a, b, c) = (abc[0].clone(), abc[1].clone(), abc[2].clone());
    // A → B → C → A.
    let answer = a
        .call(
            |r| Msg::Relay(vec![b.clone(), c.clone(), a.clone()], r),
            PATIENT,
        )
        .await
        .unwrap();
    assert_eq!(
        answer,
        Err(CallError::Deadlock(vec![
            c.pid(),
            a.pid(),
            b.pid(),
            c.pid()
        ]))
    );
    // A → B → C, ending there: served.
    let answer = a
        .call(|r| Msg::Relay(vec![b.clone(), c.clone()], r), PATIENT)
        .await
        .unwrap();
    assert_eq!(answer, Ok("end".into()));
}
