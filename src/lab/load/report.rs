//! What a load run measured, and its report: throughput, latency percentiles, the CPU
//! time the lab's process spent, and the invariant checks.

use std::time::Duration;

use super::invariants;

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// How long the warm-up saga took (placed before the measured orders, not counted in
    /// them: the consumers make their first fetches meanwhile).
    pub warm_up: Duration,
    /// Whether Ctrl-C stopped the run before every order was placed.
    pub interrupted: bool,
    /// Orders accepted by the order service.
    pub placed: usize,
    /// Orders the order service refused.
    pub refused: usize,
    /// Sagas that ended ORDER_COMPLETE.
    pub completed: usize,
    /// Sagas that ended ORDER_CANCEL.
    pub cancelled: usize,
    /// From the first order placed to the last saga finished.
    pub elapsed: Duration,
    /// Saga latencies (order placed → order final), sorted.
    pub latencies: Vec<Duration>,
    /// The process's CPU time (user and system) over [`Self::elapsed`]: every service of
    /// the lab, its embedded broker if any, and the web view with `--ui`.
    pub cpu: Duration,
    /// The invariant checks.
    pub books: invariants::Books,
}

impl LoadReport {
    /// The `p`-th percentile of the saga latency.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    /// Finished sagas per second.
    pub fn sagas_per_second(&self) -> f64 {
        (self.completed + self.cancelled) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Completed orders per second.
    pub fn completed_per_second(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The report as text.
    pub fn render(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "warm-up    1 saga in {:.0} ms (the consumers' first fetches; left out of throughput and latency)\n\
             placed     {} orders ({} refused){}\n\
             finished   {} ORDER_COMPLETE, {} ORDER_CANCEL in {:.2} s\n\
             throughput {:.0} sagas/s, {:.0} completed orders/s\n\
             latency    p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms (order placed → order final)\n\
             cpu        {:.2} s of this process ({:.0} % of one core, {:.2} ms per saga)\n\
             books      every saga of the run, the warm-up's too:\n{}",
            ms(self.warm_up),
            self.placed,
            self.refused,
            if self.interrupted {
                ", then interrupted (Ctrl-C): the figures are those orders'"
            } else {
                ""
            },
            self.completed,
            self.cancelled,
            self.elapsed.as_secs_f64(),
            self.sagas_per_second(),
            self.completed_per_second(),
            ms(self.percentile(50.0)),
            ms(self.percentile(95.0)),
            ms(self.percentile(99.0)),
            self.cpu.as_secs_f64(),
            100.0 * self.cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9),
            ms(self.cpu) / ((self.completed + self.cancelled) as f64).max(1.0),
            self.books.render()
        )
    }
}

/// CPU time (user and system) this process has used so far (zero where unknown).
#[cfg(not(unix))]
pub fn process_cpu() -> Duration {
    Duration::ZERO
}

/// CPU time (user and system) this process has used so far.
#[cfg(unix)]
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage writes into the struct it is given, which lives on this stack.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn the_process_cpu_time_grows_with_work() {
        // Work until 20 ms of CPU show (a busy machine gives this thread less than its
        // wall time): it must show well before 10 s.
        let before = process_cpu();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while process_cpu().saturating_sub(before) < Duration::from_millis(20) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no CPU time counted for 10 s of work"
            );
        }
    }
}
