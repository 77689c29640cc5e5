//! Keeps `docs/firmware-audit.md` true: it names the pinned firmware commit, every row has a
//! verdict, every model reference points at a line of code in a file that exists, and every test a
//! `fixed` row names exists.

use std::path::{Path, PathBuf};

const PINNED: &str = "2a18fc299d7b48cf094d26c38a79f33dec64b5d7";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn audit() -> String {
    std::fs::read_to_string(root().join("docs/firmware-audit.md")).expect("docs/firmware-audit.md")
}

/// The table rows (not headers or separators), split into cells (an escaped `\|` stays inside).
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("| item") && !l.starts_with("| -"))
        .filter(|l| !l.starts_with("|-"))
        .map(|l| {
            let mut cells = Vec::new();
            let mut cell = String::new();
            let mut prev = ' ';
            for c in l.chars() {
                if c == '|' && prev != '\\' {
                    cells.push(std::mem::take(&mut cell));
                } else {
                    cell.push(c);
                }
                prev = c;
            }
            cells
                .into_iter()
                .skip(1)
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// Every `.rs` file under the repository's crates/ and tests/.
fn sources() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("crates"), &mut out);
    walk(&root().join("tests"), &mut out);
    out
}

#[test]
fn the_audit_names_the_pinned_commit_and_every_row_has_a_verdict() {
    let text = audit();
    assert!(
        text.contains(PINNED),
        "the audit must name the pinned commit {PINNED}"
    );
    let rows = rows(&text);
    assert!(rows.len() > 100, "only {} rows", rows.len());
    for r in &rows {
        assert!(r.len() >= 5, "a row with {} cells: {r:?}", r.len());
        let verdict = &r[3];
        assert!(
            verdict.starts_with("matches")
                || verdict.starts_with("fixed")
                || verdict.starts_with("deliberately different"),
            "row `{}`: verdict `{verdict}` is none of matches / fixed / deliberately different",
            r[0]
        );
        if verdict.starts_with("deliberately different") {
            assert!(
                verdict.len() > "deliberately different".len() || !r[4].is_empty(),
                "row `{}`: a deliberate difference says why",
                r[0]
            );
        }
    }
}

#[test]
fn every_model_reference_points_at_code() {
    let text = audit();
    let mut checked = 0;
    for r in rows(&text) {
        let model = &r[2];
        for word in model.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')') {
            let Some((file, line)) = word.trim_matches('`').split_once(".rs:") else {
                continue;
            };
            if !file.starts_with("crates/") {
                continue;
            }
            let digits: String = line.chars().take_while(char::is_ascii_digit).collect();
            let n: usize = digits.parse().expect("a line number");
            let path = root().join(format!("{file}.rs"));
            let source = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("row `{}`: {}: {e}", r[0], path.display()));
            let at = source.lines().nth(n - 1).unwrap_or_else(|| {
                panic!("row `{}`: {file}.rs has no line {n}", r[0]);
            });
            let code = at.trim();
            assert!(
                !code.is_empty() && code != "}" && !code.starts_with("//"),
                "row `{}`: {file}.rs:{n} is `{code}`, not code",
                r[0]
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} model references");
}

#[test]
fn every_fixed_row_names_a_test_that_exists() {
    let text = audit();
    let sources = sources();
    for r in rows(&text) {
        if !r[3].starts_with("fixed") {
            continue;
        }
        let names: Vec<String> = r[3..]
            .join(" ")
            .split('`')
            .skip(1)
            .step_by(2)
            .map(|name| name.rsplit("::").next().unwrap_or(name).to_string())
            .filter(|n| {
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
            .filter(|n| n.contains('_'))
            .collect();
        assert!(
            !names.is_empty(),
            "fixed row `{}` names no test in backticks",
            r[0]
        );
        for name in names {
            let needle = format!("fn {name}(");
            assert!(
                sources.iter().any(|s| s.contains(&needle)),
                "fixed row `{}`: no test `{name}` in crates/ or tests/",
                r[0]
            );
        }
    }
}
