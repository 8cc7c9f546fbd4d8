//! Restart intensity: at most `intensity` restarts within `period`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A sliding window over the times of recent restarts, as OTP's
/// `add_restart/3`.
///
/// More than `intensity` restarts within `period` means the supervisor gives
/// up: it stops its children and exits with
/// [`arbor_runtime::ExitReason::Shutdown`], and its own supervisor decides
/// what happens next.
#[derive(Clone, Debug)]
pub struct RestartWindow {
    intensity: u32,
    period: Duration,
    restarts: VecDeque<Instant>,
}

impl RestartWindow {
    /// A window allowing `intensity` restarts in any `period`.
    pub fn new(intensity: u32, period: Duration) -> Self {
        RestartWindow {
            intensity,
            period,
            restarts: VecDeque::new(),
        }
    }

    /// Records a restart at `now`; `false` if it is one too many.
    pub fn add(&mut self, now: Instant) -> bool {
        while let Some(&oldest) = self.restarts.front() {
            if now.saturating_duration_since(oldest) >= self.period {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        self.restarts.push_back(now);
        self.restarts.len() <= self.intensity as usize
    }

    /// The most restarts allowed within the period.
    pub fn intensity(&self) -> u32 {
        self.intensity
    }

    /// The window's length.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Restarts within the period before `now`: what counts against the
    /// intensity now (restarts since aged out are not, though [`len`]
    /// keeps them until the next restart prunes them).
    ///
    /// [`len`]: RestartWindow::len
    pub fn recent(&self, now: Instant) -> usize {
        self.restarts
            .iter()
            .filter(|&&t| now.saturating_duration_since(t) < self.period)
            .count()
    }

    /// Restarts counted in the current window.
    pub fn len(&self) -> usize {
        self.restarts.len()
    }

    /// `true` when no restart is counted.
    pub fn is_empty(&self) -> bool {
        self.restarts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_intensity_restarts_then_refuses() {
        let t0 = Instant::now();
        let mut w = RestartWindow::new(3, Duration::from_secs(5));
        assert!(w.add(t0));
        assert!(w.add(t0 + Duration::from_secs(1)));
        assert!(w.add(t0 + Duration::from_secs(2)));
        assert!(!w.add(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn old_restarts_leave_the_window() {
        let t0 = Instant::now();
        let mut w = RestartWindow::new(2, Duration::from_secs(5));
        assert!(w.add(t0));
        assert!(w.add(t0 + Duration::from_secs(1)));
        // The first restart is now exactly one period old and no longer counts.
        assert!(w.add(t0 + Duration::from_secs(5)));
        assert_eq!(w.len(), 2);
        assert!(!w.add(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn zero_intensity_allows_no_restart() {
        let mut w = RestartWindow::new(0, Duration::from_secs(1));
        assert!(!w.add(Instant::now()));
    }
}
