//! The README snippets, built as they are printed.
//!
//! Every ```` ```rust ```` block of the READMEs must be a complete program (a `fn main`), without
//! rustdoc's hidden `# ` lines, and every crate it uses must be in a ```` ```toml ```` block with a
//! `[dependencies]` table before it in the same file. Each block becomes a binary of one generated
//! package under `target/readme/` (the family crates as path dependencies, the workspace's
//! `Cargo.lock`), which is then built. Links must work on a plain Markdown renderer: an absolute
//! URL, an existing relative path, or an anchor.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::util::{cargo, project_root, run, target_dir};

/// The family crates, with the features the snippets may use.
const FAMILY: [(&str, &str, &str); 4] = [
    ("perf-middleware", "perf-middleware", "full"),
    ("perf-cache-layer", "perf-cache-layer", "redis"),
    ("perf-budget", "perf-budget", "config"),
    ("perf-otel", "perf-otel", "full"),
];

/// One fenced block.
struct Block {
    info: String,
    line: usize,
    text: String,
}

/// Crates a snippet may use without declaring them.
const BUILTIN: [&str; 5] = ["std", "core", "alloc", "crate", "self"];

/// Checks every README, or only `only` (paths relative to the workspace root) when given.
pub(crate) fn test(only: &[String]) -> Result<(), String> {
    let root = project_root();
    let files = readmes(&root, only);
    let mut found = Found::default();
    for file in &files {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        found.file(file, &rel, &text);
    }
    let Found {
        problems,
        snippets,
        deps,
    } = found;
    if !problems.is_empty() {
        return Err(format!("README problems:\n  {}", problems.join("\n  ")));
    }
    if !snippets.is_empty() {
        build(&root, &snippets, &deps)?;
    }
    println!(
        "README snippets: {} programs from {} files built as printed",
        snippets.len(),
        files.len()
    );
    Ok(())
}

/// The root README, the family crates' and the examples', or only those in `only`.
fn readmes(root: &Path, only: &[String]) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    for dir in [
        "perf-middleware",
        "perf-cache-layer",
        "perf-budget",
        "perf-otel",
    ] {
        files.push(root.join(dir).join("README.md"));
    }
    if let Ok(entries) = fs::read_dir(root.join("examples")) {
        let mut more: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path().join("README.md"))
            .filter(|p| p.is_file())
            .collect();
        more.sort();
        files.extend(more);
    }
    if !only.is_empty() {
        files.retain(|f| {
            only.iter()
                .any(|o| f.strip_prefix(root).is_ok_and(|r| r == Path::new(o)))
        });
    }
    files
}

/// What the READMEs hold.
#[derive(Default)]
struct Found {
    /// Problems, each with its `file:line`.
    problems: Vec<String>,
    /// The programs to build, each with its `file:line`.
    snippets: Vec<(String, String)>,
    /// The `[dependencies]` lines of every file, by crate name.
    deps: BTreeMap<String, String>,
}

impl Found {
    /// Checks one README's links and its fenced blocks, each `rust` block against the
    /// `[dependencies]` block before it.
    fn file(&mut self, file: &Path, rel: &str, text: &str) {
        check_links(file, rel, text, &mut self.problems);
        let mut declared: Option<Vec<String>> = None;
        for block in blocks(text) {
            if block.info.starts_with("toml") && block.text.contains("[dependencies]") {
                declared = Some(dependency_lines(&block.text, &mut self.deps));
                continue;
            }
            if block.info.starts_with("rust") {
                let at = format!("{rel}:{}", block.line);
                self.snippet(at, block, declared.as_deref());
            }
        }
    }

    /// Checks one `rust` block; keeps it for the build when it is a complete program with a
    /// `[dependencies]` block before it.
    fn snippet(&mut self, at: String, block: Block, declared: Option<&[String]>) {
        let problems = &mut self.problems;
        if block.info.contains("ignore") {
            problems.push(format!(
                "{at}: a `rust,ignore` block; make it a program that builds"
            ));
            return;
        }
        if block.text.lines().any(|l| l == "#" || l.starts_with("# ")) {
            problems.push(format!(
                "{at}: rustdoc hidden `# ` lines do not paste; write them out"
            ));
        }
        if !block.text.contains("fn main") {
            problems.push(format!("{at}: not a complete program (no `fn main`)"));
            return;
        }
        let Some(declared) = declared else {
            problems.push(format!(
                "{at}: no ```toml [dependencies] block before it in the file"
            ));
            return;
        };
        for used in used_crates(&block.text) {
            if !declared.iter().any(|d| d.replace('-', "_") == used) {
                problems.push(format!(
                    "{at}: uses `{used}` but its [dependencies] block does not list it"
                ));
            }
        }
        self.snippets.push((at, block.text));
    }
}

/// The fenced blocks of a Markdown text.
fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut current {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    current = Some(Block {
                        info: info.trim().to_owned(),
                        line: i + 1,
                        text: String::new(),
                    });
                }
            }
            Some(b) => {
                if trimmed.starts_with("```") {
                    out.extend(current.take());
                } else {
                    b.text.push_str(line);
                    b.text.push('\n');
                }
            }
        }
    }
    out
}

/// The names in a `[dependencies]` table; records each line for the generated package.
fn dependency_lines(toml: &str, deps: &mut BTreeMap<String, String>) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_deps = false;
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if !in_deps || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, spec)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim().to_owned();
        deps.entry(name.clone())
            .and_modify(|old| {
                // Keep the spec with the most features.
                if spec.len() > old.len() {
                    *old = spec.trim().to_owned();
                }
            })
            .or_insert_with(|| spec.trim().to_owned());
        names.push(name);
    }
    names
}

/// The crates a snippet names in its `use` lines (first path segment).
fn used_crates(code: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in code.lines() {
        let Some(rest) = line.trim_start().strip_prefix("use ") else {
            continue;
        };
        let first: String = rest
            .trim_start_matches("::")
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !first.is_empty() && !BUILTIN.contains(&first.as_str()) && !out.contains(&first) {
            out.push(first);
        }
    }
    out
}

/// Links that work on a plain Markdown renderer.
fn check_links(file: &Path, rel: &str, text: &str, problems: &mut Vec<String>) {
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut in_code = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            let target = &after[..end];
            rest = &after[end..];
            let path = target.split('#').next().unwrap_or("");
            let ok = target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with('#')
                || (!path.is_empty() && !path.contains("::") && dir.join(path).exists());
            if !ok {
                problems.push(format!(
                    "{rel}:{}: link `{target}` works only inside rustdoc (or the file is missing); use a docs.rs URL or a relative path",
                    i + 1
                ));
            }
        }
        let mut rest = line;
        while let Some(at) = rest.find("[`") {
            let after = &rest[at + 2..];
            let Some(end) = after.find("`]") else { break };
            let next = after[end + 2..].chars().next();
            if !matches!(next, Some('(' | '[' | ':')) {
                problems.push(format!(
                    "{rel}:{}: `[`{}`]` is a rustdoc intra-doc link; give it a URL",
                    i + 1,
                    &after[..end]
                ));
            }
            rest = &after[end..];
        }
    }
}

/// Writes the snippets as binaries of one package and builds it.
fn build(
    root: &Path,
    snippets: &[(String, String)],
    deps: &BTreeMap<String, String>,
) -> Result<(), String> {
    let dir = target_dir().join("readme");
    let bin = dir.join("src").join("bin");
    let _ = fs::remove_dir_all(&bin);
    fs::create_dir_all(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let mut manifest = String::from(
        "[package]\nname = \"readme-snippets\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n[workspace]\n\n[dependencies]\n",
    );
    for (name, spec) in deps {
        if let Some((_, path, features)) = FAMILY.iter().find(|(n, ..)| n == name) {
            let path = root.join(path);
            manifest.push_str(&format!(
                "{name} = {{ path = {:?}, features = [\"{features}\"] }}\n",
                path.display().to_string()
            ));
        } else {
            manifest.push_str(&format!("{name} = {spec}\n"));
        }
    }
    fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| e.to_string())?;
    let _ = fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"));
    for (i, (at, code)) in snippets.iter().enumerate() {
        let text = format!("//! {at}\n#![allow(unused)]\n{code}");
        fs::write(bin.join(format!("snippet{i}.rs")), text).map_err(|e| e.to_string())?;
    }
    run(cargo()
        .args(["build", "--bins", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_used_crates_and_declared_ones() {
        let code =
            "use std::io;\nuse axum::{Router};\nuse perf_middleware::PerfLayer;\nfn main() {}\n";
        assert_eq!(used_crates(code), ["axum", "perf_middleware"]);
        let mut deps = BTreeMap::new();
        let names = dependency_lines(
            "[dependencies]\naxum = \"0.8\"\nperf-middleware = { version = \"0.1\" }\n[dev-dependencies]\nx = \"1\"\n",
            &mut deps,
        );
        assert_eq!(names, ["axum", "perf-middleware"]);
    }

    #[test]
    fn rustdoc_links_are_reported() {
        let mut p = Vec::new();
        check_links(
            Path::new("/nonexistent/README.md"),
            "R",
            "see [`Foo`] and [x](crate::Foo) and [y](https://docs.rs/x) and [z](#a)\n",
            &mut p,
        );
        assert_eq!(p.len(), 2, "{p:?}");
    }
}
