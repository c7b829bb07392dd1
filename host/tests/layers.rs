//! The top-level modules of `host/src` import each other only downwards: this test reads every
//! source file, maps it to its top-level module (`foo.rs` and `foo/…` are `foo`), collects the
//! modules it names through `crate::…` paths (`use crate::{a, b::c}` groups included) and through
//! `super::` paths that climb to the crate root, and fails on any cycle, naming it and the lines
//! that make each of its edges.
//!
//! Comments and string literals are skipped: a doc link to a module above is not an import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// An edge `from → to` and where it is made (`file:line`).
type Graph = BTreeMap<String, BTreeMap<String, Vec<String>>>;

#[test]
fn top_level_modules_import_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(
        graph.contains_key("plugins") && graph.contains_key("api"),
        "the scan found no modules under {}",
        src.display()
    );
    if let Some(cycle) = find_cycle(&graph) {
        let mut message = format!(
            "import cycle between top-level modules: {}\n",
            cycle.join(" → ")
        );
        for pair in cycle.windows(2) {
            let sites = &graph[&pair[0]][&pair[1]];
            message.push_str(&format!(
                "  {} → {}: {}\n",
                pair[0],
                pair[1],
                sites.join(", ")
            ));
        }
        panic!("{message}");
    }
}

#[test]
fn the_scanner_sees_groups_super_and_skips_comments() {
    let code = r#"
        use crate::{a, b::c, d::{e, f}};
        use crate::g::h; // crate::commented
        /* crate::blocked */
        let s = "crate::quoted";
        let c = '"'; let l: &'static str = "";
        fn x() { super::super::i::j(); super::k(); $crate::m::n!(); }
        mod inner { fn y() { super::super::super::o::p(); super::super::not_root(); } }
    "#;
    // As if in `foo/bar.rs`: two `super::` reach the crate root, three inside `mod inner`.
    let found: BTreeSet<String> = references(code, 2).into_iter().map(|(m, _)| m).collect();
    let want: BTreeSet<String> = ["a", "b", "d", "g", "i", "m", "o"].map(String::from).into();
    assert_eq!(found, want);
    let mut graph = Graph::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a")] {
        graph
            .entry(from.into())
            .or_default()
            .insert(to.into(), vec![]);
    }
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
}

/// Every edge between different top-level modules of the crate rooted at `src`.
fn module_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).expect("under src");
        let parts: Vec<String> = relative
            .iter()
            .map(|part| part.to_string_lossy().into_owned())
            .collect();
        // The crate roots declare modules; `main.rs` is another crate.
        if parts.len() == 1 && (parts[0] == "lib.rs" || parts[0] == "main.rs") {
            continue;
        }
        let module = parts[0].trim_end_matches(".rs").to_owned();
        let depth = parts.len();
        let text = std::fs::read_to_string(&file).expect("readable source");
        let entry = graph.entry(module.clone()).or_default();
        for (target, line) in references(&text, depth) {
            if target != module {
                entry
                    .entry(target)
                    .or_default()
                    .push(format!("{}:{line}", relative.display()));
            }
        }
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The top-level modules `code` names, with the line of each reference. `depth` is how many
/// `super::` climb from the file's module to the crate root (1 for `foo.rs`, 2 for `foo/bar.rs`).
fn references(code: &str, depth: usize) -> Vec<(String, usize)> {
    let tokens = tokens(code);
    let mut found = Vec::new();
    // Inline `mod x { … }` blocks add a level for `super::`: (brace depth at which it opened).
    let mut inline_modules: Vec<usize> = Vec::new();
    let mut braces = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let (token, line) = (&tokens[i].0, tokens[i].1);
        match token.as_str() {
            "{" => braces += 1,
            "}" => {
                braces = braces.saturating_sub(1);
                if inline_modules.last() == Some(&braces) {
                    inline_modules.pop();
                }
            }
            "mod" if tokens.get(i + 2).is_some_and(|t| t.0 == "{") => {
                inline_modules.push(braces);
            }
            "crate" | "$crate" if tokens.get(i + 1).is_some_and(|t| t.0 == "::") => {
                found.extend(path_heads(&tokens, i + 2).into_iter().map(|m| (m, line)));
            }
            "super" if i == 0 || tokens[i - 1].0 != "::" => {
                let mut climbs = 0;
                let mut j = i;
                while tokens.get(j).is_some_and(|t| t.0 == "super")
                    && tokens.get(j + 1).is_some_and(|t| t.0 == "::")
                {
                    climbs += 1;
                    j += 2;
                }
                if climbs == depth + inline_modules.len() {
                    found.extend(path_heads(&tokens, j).into_iter().map(|m| (m, line)));
                }
                i = j.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The first segment of the path starting at token `at`, or of each path in a `{…}` group.
fn path_heads(tokens: &[(String, usize)], at: usize) -> Vec<String> {
    let Some((first, _)) = tokens.get(at) else {
        return Vec::new();
    };
    if first != "{" {
        return if is_module_name(first) {
            vec![first.clone()]
        } else {
            Vec::new()
        };
    }
    let mut heads = Vec::new();
    let mut nesting = 0;
    let mut expect_head = true;
    for (token, _) in &tokens[at..] {
        match token.as_str() {
            "{" => {
                nesting += 1;
                if nesting == 1 {
                    expect_head = true;
                }
                continue;
            }
            "}" => {
                nesting -= 1;
                if nesting == 0 {
                    break;
                }
            }
            "," if nesting == 1 => {
                expect_head = true;
                continue;
            }
            _ if nesting == 1 && expect_head && is_module_name(token) => {
                heads.push(token.clone());
            }
            _ => {}
        }
        expect_head = false;
    }
    heads
}

fn is_module_name(token: &str) -> bool {
    token != "self"
        && token
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
}

/// Identifiers (with a leading `$`), `::`, braces and commas of `code`, with their lines;
/// comments, strings and character literals are skipped.
fn tokens(code: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut nesting = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    nesting += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    nesting -= 1;
                    i += 2;
                    if nesting == 0 {
                        break;
                    }
                } else {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && raw_string(&chars, i) {
            // r"…" or r#"…"#: ends at a quote followed by as many hashes.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                line += usize::from(chars[j] == '\n');
                j += 1;
            }
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                line += usize::from(chars.get(i) == Some(&'\n'));
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((chars[start..i].iter().collect(), line));
        } else if c == ':' && next == Some(':') {
            tokens.push(("::".into(), line));
            i += 2;
        } else {
            if matches!(c, '{' | '}' | ',') {
                tokens.push((c.to_string(), line));
            }
            i += 1;
        }
    }
    tokens
}

/// Whether the `r` at `at` starts a raw string rather than ending an identifier (`for"`…).
fn raw_string(chars: &[char], at: usize) -> bool {
    let before = at.checked_sub(1).map(|b| chars[b]);
    if before.is_some_and(|b| b.is_alphanumeric() || b == '_') {
        return false;
    }
    let mut j = at + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    chars.get(j) == Some(&'"')
}

/// A cycle as the list of its modules, the first repeated at the end.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_owned(), Mark::Open);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            match marks.get(next).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let start = stack.iter().position(|n| n == next).expect("on the stack");
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(next, graph, marks, stack) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if marks.get(node).copied().unwrap_or(Mark::New) == Mark::New {
            let mut stack = Vec::new();
            if let Some(cycle) = visit(node, graph, &mut marks, &mut stack) {
                return Some(cycle);
            }
        }
    }
    None
}
