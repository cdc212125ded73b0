//! What the latency benchmarks share: nearest-rank percentiles, the one-line report, a
//! process's CPU time and finding PostgreSQL. Included by each benchmark with `#[path]`; not a benchmark itself.

use std::time::Duration;

/// The nearest-rank `p`th percentile of sorted durations.
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Prints `label` with the count, median, p90, p99 and max of `v`.
pub fn report(label: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  {label:<28} n={:<4} median {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        v.len(),
        ms(percentile(&v, 50)),
        ms(percentile(&v, 90)),
        ms(percentile(&v, 99)),
        ms(*v.last().expect("at least one sample"))
    );
}

/// PostgreSQL from `SWITCHBOARD_TEST_POSTGRES`, else the local server when it answers.
pub async fn postgres_url() -> Option<String> {
    if let Ok(url) = std::env::var("SWITCHBOARD_TEST_POSTGRES") {
        return Some(url);
    }
    tokio::net::TcpStream::connect("127.0.0.1:5432")
        .await
        .ok()
        .map(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// utime + stime of a process, from `/proc/PID/stat` (clock ticks of 1/100 s).
pub fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line; 12 and 13 after the name and state.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
