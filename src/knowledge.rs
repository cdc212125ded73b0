//! The knowledge base: Markdown articles with a small front matter in `[knowledge] dir`,
//! searched with tantivy (BM25 over an in-memory index, English stop words and stemming),
//! reloaded when a file changes.
//!
//! Owns the article format and its checks (`switchboard kb check`: front matter, unknown
//! departments, broken relative links, each reported with its file and line), the index, and
//! the relevance rule that decides which hits are worth suggesting. Must not post anything or
//! touch tickets: the desk and commands decide what to do with the hits.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, STORED,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, TantivyDocument, Term};

/// The analyzer's name in the index.
const ANALYZER: &str = "kb_en";

/// The most distinct query terms a search weighs (a long ticket text keeps its first ones).
const MAX_QUERY_TERMS: usize = 32;

/// How many hits a search looks at before the relevance rule.
const CANDIDATES: usize = 10;

/// Title words count this much more than body words.
const TITLE_BOOST: f32 = 2.0;

/// The relevance rule's share of the query's distinct terms an article must contain.
pub const MIN_COVERAGE: f32 = 0.34;

/// The relevance rule's least score, as a share of the best hit's.
pub const MIN_RELATIVE_SCORE: f32 = 0.5;

/// The most suggestions a ticket gets.
pub const MAX_SUGGESTIONS: usize = 3;

/// Why the knowledge base could not be read or indexed.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// The folder could not be listed or a file read.
    #[error("knowledge base {path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// tantivy refused to build the index (a bug: the schema is fixed).
    #[error("knowledge index: {0}")]
    Index(#[from] tantivy::TantivyError),
}

/// One article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    /// Its path under the folder without `.md`, with `/` between folders: `billing/refunds`.
    pub id: String,
    /// Title (`title`, required).
    pub title: String,
    /// Labels (`tags`).
    pub tags: Vec<String>,
    /// Departments it is for (`departments`; empty: every department).
    pub departments: Vec<String>,
    /// Its public address, if published (`url`).
    pub url: Option<String>,
    /// The Markdown after the front matter.
    pub body: String,
}

impl Article {
    /// Whether it is for tickets of `department`.
    pub fn covers(&self, department: &str) -> bool {
        self.departments.is_empty() || self.departments.iter().any(|d| d == department)
    }
}

/// Something wrong in an article, at a line of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, relative to the folder.
    pub file: String,
    /// The line (from 1).
    pub line: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Every `.md` file under `dir` (recursively), by relative path, with its text.
fn markdown_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, KnowledgeError> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| KnowledgeError::Io {
            path: d.display().to_string(),
            source,
        })?;
        for e in entries {
            let e = e.map_err(|source| KnowledgeError::Io {
                path: d.display().to_string(),
                source,
            })?;
            let path = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if name.ends_with(".md") {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().to_string())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads every article under `dir`; an article with a problem is left out and reported.
pub fn load(dir: &Path) -> Result<(Vec<Article>, Vec<Problem>), KnowledgeError> {
    let mut articles = Vec::new();
    let mut problems = Vec::new();
    for (rel, path) in markdown_files(dir)? {
        let text = std::fs::read_to_string(&path).map_err(|source| KnowledgeError::Io {
            path: path.display().to_string(),
            source,
        })?;
        match parse(&rel, &text) {
            Ok(a) => articles.push(a),
            Err(p) => problems.extend(p),
        }
    }
    Ok((articles, problems))
}

/// Checks the folder as `switchboard kb check` does: every article's front matter, its
/// departments against `departments` (when known), and its relative links against the files
/// there.
pub fn check(
    dir: &Path,
    departments: Option<&[String]>,
) -> Result<(usize, Vec<Problem>), KnowledgeError> {
    let (articles, mut problems) = load(dir)?;
    let files: HashSet<String> = markdown_files(dir)?
        .into_iter()
        .map(|(rel, _)| rel)
        .collect();
    for (rel, path) in markdown_files(dir)? {
        let Some(a) = articles.iter().find(|a| format!("{}.md", a.id) == rel) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            if let (true, Some(departments)) =
                (line.trim_start().starts_with("departments:"), departments)
            {
                for d in &a.departments {
                    if !departments.contains(d) {
                        problems.push(Problem {
                            file: rel.clone(),
                            line: i + 1,
                            message: format!(
                                "no department named `{d}`; known: {}",
                                departments.join(", ")
                            ),
                        });
                    }
                }
            }
            for target in links(line) {
                if let Some(missing) = broken(&rel, &target, &files, dir) {
                    problems.push(Problem {
                        file: rel.clone(),
                        line: i + 1,
                        message: missing,
                    });
                }
            }
        }
    }
    problems.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok((articles.len(), problems))
}

/// The targets of Markdown links `[text](target)` on a line.
fn links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            let target = rest[..end].split_whitespace().next().unwrap_or("");
            out.push(target.to_string());
            rest = &rest[end..];
        }
    }
    out
}

/// Why a relative link from `from` to `target` leads nowhere; `None` when it is fine or not
/// relative (a web address, a mail address, an anchor).
fn broken(from: &str, target: &str, files: &HashSet<String>, dir: &Path) -> Option<String> {
    if target.is_empty() {
        return Some("an empty link: write `[text](other-article.md)` or a web address".into());
    }
    if target.contains("://") || target.starts_with("mailto:") || target.starts_with('#') {
        return None;
    }
    let path = target.split('#').next().unwrap_or("");
    let base: Vec<&str> = from.split('/').collect();
    let mut parts: Vec<&str> = base[..base.len().saturating_sub(1)].to_vec();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let resolved = parts.join("/");
    if files.contains(&resolved) || dir.join(&resolved).exists() {
        None
    } else {
        Some(format!(
            "the link to `{target}` leads nowhere: there is no `{resolved}` in the knowledge base"
        ))
    }
}

/// Reads one article: a front matter between `---` lines (`title`, `tags`, `departments`,
/// `url`), then Markdown.
pub fn parse(rel: &str, text: &str) -> Result<Article, Vec<Problem>> {
    let problem = |line: usize, message: String| Problem {
        file: rel.to_string(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, l)) if l.trim() == "---" => {}
        _ => {
            return Err(vec![problem(
                1,
                "an article starts with a front matter: `---`, then `title: …` (and optionally `tags`, `departments`, `url`), then `---`".into(),
            )])
        }
    }
    let mut fields: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut body_from = None;
    for (i, line) in lines.by_ref() {
        let n = i + 1;
        if line.trim() == "---" {
            body_from = Some(n);
            break;
        }
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            problems.push(problem(n, format!("`{}` is not `key: value`", line.trim())));
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        if !["title", "tags", "departments", "url"].contains(&key.as_str()) {
            problems.push(problem(
                n,
                format!("unknown key `{key}`; an article has title, tags, departments and url"),
            ));
            continue;
        }
        if fields
            .insert(key.clone(), (n, value.trim().to_string()))
            .is_some()
        {
            problems.push(problem(n, format!("`{key}` is given twice")));
        }
    }
    let Some(body_line) = body_from else {
        return Err(vec![problem(
            1,
            "the front matter is never closed: end it with a line `---`".into(),
        )]);
    };
    let title = match fields.get("title") {
        Some((_, t)) if !unquote(t).is_empty() => unquote(t),
        Some((n, _)) => {
            problems.push(problem(*n, "`title` is empty".into()));
            String::new()
        }
        None => {
            problems.push(problem(1, "`title` is missing".into()));
            String::new()
        }
    };
    let list = |key: &str, problems: &mut Vec<Problem>| -> Vec<String> {
        let Some((n, v)) = fields.get(key) else {
            return vec![];
        };
        let inner = v.trim();
        let inner = match (inner.strip_prefix('['), inner.ends_with(']')) {
            (Some(rest), true) => &rest[..rest.len() - 1],
            (Some(_), false) => {
                problems.push(problem(
                    *n,
                    format!("`{key}` opens `[` but never closes it"),
                ));
                return vec![];
            }
            _ => inner,
        };
        inner
            .split(',')
            .map(|s| unquote(s).to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let tags = list("tags", &mut problems);
    let departments = list("departments", &mut problems);
    let url = match fields.get("url") {
        Some((n, u)) => {
            let u = unquote(u);
            if u.starts_with("https://") || u.starts_with("http://") {
                Some(u)
            } else {
                problems.push(problem(
                    *n,
                    format!("`url` must be a web address (https://…), found `{u}`"),
                ));
                None
            }
        }
        None => None,
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let body: String = text.lines().skip(body_line).collect::<Vec<_>>().join("\n");
    Ok(Article {
        id: rel.trim_end_matches(".md").to_string(),
        title,
        tags,
        departments,
        url,
        body: body.trim().to_string(),
    })
}

fn unquote(s: &str) -> String {
    s.trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .trim()
        .to_string()
}

/// Words that say nothing about what a question is about: English function words, the
/// pieces contractions split into (`can't` → `can`, `t`), and chat pleasantries. tantivy's
/// own English list is Lucene's short one, which keeps `i`, `my` and `can`.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "cannot",
    "could",
    "d",
    "did",
    "do",
    "does",
    "doing",
    "don",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "get",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "ll",
    "m",
    "me",
    "more",
    "most",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "re",
    "s",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "t",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "ve",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "hi",
    "hello",
    "hey",
    "please",
    "thanks",
    "thank",
    "thx",
    "pls",
    "anyone",
    "someone",
    "something",
    "still",
    "also",
    "since",
    "ago",
    "yet",
];

/// The analyzer articles and queries share: words, lowercased, without stop words
/// ([`STOP_WORDS`]), stemmed ("refunds", "refunded" → "refund").
fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| w.to_string()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Finds the words of a text a reader would call its topic, each once, as `(stem, word)`:
/// what the index would search for ("invoices" → `invoic`), with the word as written,
/// lowercased. Stop words, numbers and words shorter than three letters are left out. The
/// digest counts these over the tickets no article matched, to show what to write next. Its
/// analyzers are built once for every text it is given.
pub struct Keywords {
    surface: TextAnalyzer,
    stem: TextAnalyzer,
}

impl Default for Keywords {
    fn default() -> Self {
        Self {
            surface: TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(RemoveLongFilter::limit(40))
                .filter(LowerCaser)
                .filter(StopWordFilter::remove(
                    STOP_WORDS.iter().map(|w| w.to_string()),
                ))
                .build(),
            stem: TextAnalyzer::builder(SimpleTokenizer::default())
                .filter(Stemmer::new(Language::English))
                .build(),
        }
    }
}

impl Keywords {
    /// The topic words of `text`, in order of first appearance.
    pub fn of(&mut self, text: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for word in terms(&mut self.surface, text) {
            if word.chars().count() < 3 || !word.chars().any(char::is_alphabetic) {
                continue;
            }
            let Some(root) = terms(&mut self.stem, &word).into_iter().next() else {
                continue;
            };
            if !out.iter().any(|(r, _)| *r == root) {
                out.push((root, word));
            }
        }
        out
    }
}

/// The distinct analyzed terms of `text`, in order of first appearance.
fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        let t = &stream.token().text;
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// A search hit.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The article.
    pub article: Arc<Article>,
    /// Its BM25 score (title words boosted).
    pub score: f32,
    /// The share of the query's distinct terms it contains.
    pub coverage: f32,
}

/// The articles, indexed.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    title: Field,
    body: Field,
    ord: Field,
    articles: Vec<Arc<Article>>,
    /// Each article's distinct terms, for the coverage of a query.
    terms: Vec<HashSet<String>>,
    /// The analyzer, built once (its stop-word set is not rebuilt per question); each query
    /// works on a clone.
    analyzer: TextAnalyzer,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("articles", &self.articles.len())
            .finish()
    }
}

impl SearchIndex {
    /// Indexes `articles` in memory.
    pub fn build(articles: Vec<Article>) -> Result<SearchIndex, KnowledgeError> {
        let mut schema = Schema::builder();
        let text = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        let title = schema.add_text_field("title", text.clone());
        let body = schema.add_text_field("body", text);
        let ord = schema.add_u64_field("ord", FAST | STORED);
        let index = Index::create_in_ram(schema.build());
        let analyzer = analyzer();
        index.tokenizers().register(ANALYZER, analyzer.clone());
        let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, 50_000_000)?;
        let mut a = analyzer.clone();
        let mut all_terms = Vec::with_capacity(articles.len());
        for (i, art) in articles.iter().enumerate() {
            let mut doc = TantivyDocument::default();
            doc.add_text(title, &art.title);
            doc.add_text(body, format!("{}\n{}", art.tags.join(" "), art.body));
            doc.add_u64(ord, i as u64);
            writer.add_document(doc)?;
            let text = format!("{} {} {}", art.title, art.tags.join(" "), art.body);
            all_terms.push(terms(&mut a, &text).into_iter().collect());
        }
        writer.commit()?;
        let reader = index.reader()?;
        Ok(SearchIndex {
            index,
            reader,
            title,
            body,
            ord,
            articles: articles.into_iter().map(Arc::new).collect(),
            terms: all_terms,
            analyzer,
        })
    }

    /// How many articles it holds.
    pub fn len(&self) -> usize {
        self.articles.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.articles.is_empty()
    }

    /// The article `id`.
    pub fn article(&self, id: &str) -> Option<Arc<Article>> {
        self.articles.iter().find(|a| a.id == id).cloned()
    }

    /// The best hits for `text`, best first, at most `limit`: every article containing one of
    /// its terms, ranked by BM25 (title words counting double).
    pub fn search(&self, text: &str, limit: usize) -> Vec<Hit> {
        self.search_terms(&self.query_terms(text), limit)
    }

    /// The distinct analyzed terms of a question, at most [`MAX_QUERY_TERMS`].
    fn query_terms(&self, text: &str) -> Vec<String> {
        let mut query_terms = terms(&mut self.analyzer.clone(), text);
        query_terms.truncate(MAX_QUERY_TERMS);
        query_terms
    }

    /// [`SearchIndex::search`] for terms already analyzed.
    fn search_terms(&self, query_terms: &[String], limit: usize) -> Vec<Hit> {
        if query_terms.is_empty() || self.articles.is_empty() {
            return vec![];
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for t in query_terms {
            let in_title = TermQuery::new(
                Term::from_field_text(self.title, t),
                IndexRecordOption::WithFreqs,
            );
            clauses.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(in_title), TITLE_BOOST)),
            ));
            clauses.push((
                Occur::Should,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.body, t),
                    IndexRecordOption::WithFreqs,
                )),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let Ok(top) = searcher.search(&query, &TopDocs::with_limit(limit.max(1)).order_by_score())
        else {
            return vec![];
        };
        let mut out = Vec::new();
        for (score, address) in top {
            let Ok(doc) = searcher.doc::<TantivyDocument>(address) else {
                continue;
            };
            let Some(i) = doc.get_first(self.ord).and_then(|v| v.as_u64()) else {
                continue;
            };
            let i = i as usize;
            let Some(article) = self.articles.get(i) else {
                continue;
            };
            let matched = query_terms
                .iter()
                .filter(|t| self.terms[i].contains(*t))
                .count();
            out.push(Hit {
                article: article.clone(),
                score,
                coverage: matched as f32 / query_terms.len() as f32,
            });
        }
        out
    }

    /// The articles worth suggesting for a ticket of `department` saying `text`, best first,
    /// at most [`MAX_SUGGESTIONS`], by the relevance rule: an article for the department
    /// that contains at least [`MIN_COVERAGE`] of the text's distinct terms (after stop words
    /// and stemming; at least two of them when the text has two or more) and scores at least
    /// [`MIN_RELATIVE_SCORE`] of the best hit. Raw BM25 scores are not comparable across
    /// queries, so no absolute score threshold is used.
    pub fn suggest(&self, text: &str, department: &str) -> Vec<Hit> {
        let query_terms = self.query_terms(text);
        let hits: Vec<Hit> = self
            .search_terms(&query_terms, CANDIDATES)
            .into_iter()
            .filter(|h| h.article.covers(department))
            .collect();
        let Some(best) = hits.first().map(|h| h.score) else {
            return vec![];
        };
        let n = query_terms.len();
        let least = if n >= 2 { 2.0 / n as f32 } else { 1.0 };
        hits.into_iter()
            .filter(|h| h.coverage >= MIN_COVERAGE.max(least.min(1.0)) || h.coverage >= 1.0)
            .filter(|h| h.score >= best * MIN_RELATIVE_SCORE)
            .take(MAX_SUGGESTIONS)
            .collect()
    }

    /// The underlying tantivy index (benchmarks report its size).
    pub fn tantivy(&self) -> &Index {
        &self.index
    }
}

/// The folder's state, to tell when something changed: every file's path, size and time.
type Stamp = Vec<(String, u64, Option<SystemTime>)>;

fn stamp(dir: &Path) -> Stamp {
    let Ok(files) = markdown_files(dir) else {
        return vec![];
    };
    files
        .into_iter()
        .map(|(rel, path)| {
            let meta = std::fs::metadata(&path).ok();
            (
                rel,
                meta.as_ref().map_or(0, |m| m.len()),
                meta.and_then(|m| m.modified().ok()),
            )
        })
        .collect()
}

/// The knowledge base a desk searches: the folder's articles, indexed, swapped for a new
/// index when the folder changes.
pub struct KnowledgeBase {
    dir: Option<PathBuf>,
    current: RwLock<Arc<SearchIndex>>,
    seen: Mutex<Stamp>,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase")
            .field("dir", &self.dir)
            .field("articles", &self.index().len())
            .finish()
    }
}

impl KnowledgeBase {
    /// An empty knowledge base (none configured).
    pub fn none() -> KnowledgeBase {
        KnowledgeBase {
            dir: None,
            current: RwLock::new(Arc::new(
                SearchIndex::build(vec![]).expect("an empty index builds"),
            )),
            seen: Mutex::new(vec![]),
        }
    }

    /// Loads and indexes `dir`. Articles with problems are left out and logged.
    pub fn open(dir: &Path) -> Result<KnowledgeBase, KnowledgeError> {
        let kb = KnowledgeBase {
            dir: Some(dir.to_path_buf()),
            current: RwLock::new(Arc::new(SearchIndex::build(vec![])?)),
            seen: Mutex::new(vec![]),
        };
        kb.reload_if_changed()?;
        Ok(kb)
    }

    /// The folder, when one is configured.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The current index.
    pub fn index(&self) -> Arc<SearchIndex> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads and indexes the folder again when a file was added, changed or removed since
    /// the last look; `Some(articles)` when it did.
    pub fn reload_if_changed(&self) -> Result<Option<usize>, KnowledgeError> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let now = stamp(dir);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now && !seen.is_empty() {
                return Ok(None);
            }
            *seen = now;
        }
        let (articles, problems) = load(dir)?;
        for p in &problems {
            tracing::warn!(problem = %p, "knowledge base article left out (`switchboard kb check` lists every problem)");
        }
        let n = articles.len();
        let index = SearchIndex::build(articles)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(index);
        tracing::info!(articles = n, dir = %dir.display(), "knowledge base indexed");
        Ok(Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(id: &str, title: &str, body: &str) -> Article {
        Article {
            id: id.into(),
            title: title.into(),
            tags: vec![],
            departments: vec![],
            url: None,
            body: body.into(),
        }
    }

    #[test]
    fn keywords_are_topic_words_once_each_by_stem() {
        let mut keywords = Keywords::default();
        let k = keywords
            .of("Hi, my invoices are wrong: invoice 42 was charged twice, please fix it ASAP!!");
        let words: Vec<&str> = k.iter().map(|(_, w)| w.as_str()).collect();
        assert_eq!(
            words,
            ["invoices", "wrong", "charged", "twice", "fix", "asap"]
        );
        assert_eq!(k[0].0, "invoic");
        assert!(keywords.of("ok, thanks 123").is_empty());
    }

    #[test]
    fn front_matter_problems_name_their_line() {
        let bad = "---\ntitle: Refunds\ncolour: blue\nurl: ftp://x\n---\nbody";
        let p = parse("billing/refunds.md", bad).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            [
                "billing/refunds.md:3: unknown key `colour`; an article has title, tags, departments and url",
                "billing/refunds.md:4: `url` must be a web address (https://…), found `ftp://x`"
            ]
        );
        assert!(parse("a.md", "no front matter").is_err());
        assert!(parse("a.md", "---\ntitle: x\n").unwrap_err()[0]
            .message
            .contains("never closed"));
        let ok = parse(
            "billing/refunds.md",
            "---\ntitle: \"Refunds\"\ntags: [money, Refund]\ndepartments: billing\nurl: https://help.example.com/refunds\n---\n\nRefunds take 5 days.\n",
        )
        .unwrap();
        assert_eq!(ok.id, "billing/refunds");
        assert_eq!(ok.tags, ["money", "refund"]);
        assert_eq!(ok.departments, ["billing"]);
        assert_eq!(ok.body, "Refunds take 5 days.");
    }

    #[test]
    fn the_rule_suggests_the_relevant_article_and_nothing_for_unrelated_text() {
        let index = SearchIndex::build(vec![
            article(
                "password",
                "Resetting your password",
                "If you forgot your password, choose Forgot password on the sign-in page and follow the email we send.",
            ),
            article(
                "refunds",
                "Refunds and double charges",
                "A payment charged twice is refunded within five working days.",
            ),
            article("vpn", "VPN keeps disconnecting", "Restart the VPN client and check the network."),
        ])
        .unwrap();
        let ids = |text: &str| -> Vec<String> {
            index
                .suggest(text, "support")
                .iter()
                .map(|h| h.article.id.clone())
                .collect()
        };
        assert_eq!(ids("I forgot my password and cannot sign in"), ["password"]);
        assert_eq!(ids("I was charged twice, please refund me"), ["refunds"]);
        assert_eq!(ids("the weather is lovely today"), Vec::<String>::new());
        assert_eq!(ids("the and of"), Vec::<String>::new(), "stop words only");
    }
}
