//! The knowledge base's search at size: 10,000 generated articles (`BENCH_KB_ARTICLES`)
//! indexed in memory, then 2,000 questions (`BENCH_KB_QUERIES`) asked the way a new ticket
//! asks (`suggest`: search, coverage and the relevance rule) and the way `/kb search` does.
//! Prints the index build time and each path's median, p99 and worst time per query; the
//! issue's target is a p99 of 10 ms or less. Deterministic: the same articles and questions on
//! every run.
//!
//! Run: `cargo bench --bench kb_search`.

use std::time::{Duration, Instant};

use switchboard::knowledge::{Article, SearchIndex};

/// A small deterministic generator (no dependency on a random crate's stream).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// Made-up words: two or three syllables, so stemming and stop words see word-like text.
fn vocabulary(n: usize) -> Vec<String> {
    let syllables = [
        "bar", "cel", "dor", "fin", "gal", "hem", "jor", "kal", "lin", "mor", "nav", "pel", "quor",
        "ris", "sal", "tor", "ul", "ven", "wex", "yar", "zen", "ost", "ing", "ment",
    ];
    let mut rng = Lcg(7);
    let mut words: Vec<String> = Vec::with_capacity(n);
    while words.len() < n {
        let parts = 2 + rng.next(2);
        let w: String = (0..parts)
            .map(|_| syllables[rng.next(syllables.len())])
            .collect();
        if !words.contains(&w) {
            words.push(w);
        }
    }
    words
}

fn sentence(rng: &mut Lcg, words: &[String], len: usize) -> String {
    // Common words come up far more often than rare ones, as in real text.
    (0..len)
        .map(|_| {
            let r = rng.next(words.len());
            words[(r * r) / words.len()].as_str()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "  {name}: median {:?}   p99 {:?}   worst {:?}   ({} questions)",
        quantile(&times, 0.5),
        quantile(&times, 0.99),
        times.last().copied().unwrap_or_default(),
        times.len()
    );
}

fn main() {
    let n: usize = std::env::var("BENCH_KB_ARTICLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let queries: usize = std::env::var("BENCH_KB_QUERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let words = vocabulary(3_000);
    let departments = ["billing", "support", "it", "sales"];
    let mut rng = Lcg(42);
    let articles: Vec<Article> = (0..n)
        .map(|i| {
            let title_len = 4 + rng.next(5);
            let body_len = 80 + rng.next(120);
            Article {
                id: format!("generated/article-{i}"),
                title: sentence(&mut rng, &words, title_len),
                tags: vec![words[rng.next(words.len())].clone()],
                departments: vec![departments[rng.next(departments.len())].to_string()],
                url: None,
                body: sentence(&mut rng, &words, body_len),
            }
        })
        .collect();
    let titles: Vec<String> = articles.iter().map(|a| a.title.clone()).collect();
    let started = Instant::now();
    let index = SearchIndex::build(articles).expect("the index builds");
    let built = started.elapsed();
    println!("knowledge base: {n} generated articles, index built in {built:?}");
    // Questions: half reword an article's title among other words, half are random text.
    let questions: Vec<String> = (0..queries)
        .map(|i| {
            let extra = 3 + rng.next(10);
            let mut q = sentence(&mut rng, &words, extra);
            if i % 2 == 0 {
                q = format!("{} {q}", titles[rng.next(titles.len())]);
            }
            q
        })
        .collect();
    let mut suggest = Vec::with_capacity(queries);
    let mut suggested = 0;
    for q in &questions {
        let t = Instant::now();
        let hits = index.suggest(q, departments[q.len() % departments.len()]);
        suggest.push(t.elapsed());
        suggested += usize::from(!hits.is_empty());
    }
    let mut search = Vec::with_capacity(queries);
    for q in &questions {
        let t = Instant::now();
        let hits = index.search(q, 5);
        search.push(t.elapsed());
        assert!(hits.len() <= 5);
    }
    report("suggest (a new ticket)", suggest);
    report("search (/kb search)", search);
    println!("  {suggested} of {queries} questions got a suggestion");
}
