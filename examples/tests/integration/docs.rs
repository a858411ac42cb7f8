//! The documentation cannot drift from code that runs: every Rust block in the README and in
//! `docs/` must be an excerpt of one of the examples (which their own test runs against the
//! real servers), lines compared without their indentation.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Markdown files whose code must compile: the README and every page of `docs/`.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.expect("a readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    files.extend(pages);
    files
}

/// The ```rust blocks of `markdown`, each as its lines.
fn rust_blocks(markdown: &str) -> Vec<Vec<String>> {
    blocks_of(markdown, "rust")
}

/// The ```<language> blocks of `markdown`, each as its lines.
fn blocks_of(markdown: &str, language: &str) -> Vec<Vec<String>> {
    let fence_start = format!("```{language}");
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, fence) if fence.starts_with(&fence_start) => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => block.push(line.to_owned()),
            (None, _) => {}
        }
    }
    blocks
}

/// Lines without indentation, blank ones left out.
fn normalized<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    lines
        .into_iter()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

fn example_sources() -> Vec<(PathBuf, String)> {
    let dir = root().join("examples/src/bin");
    let mut sources: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .expect("examples/src/bin exists")
        .map(|entry| {
            let path = entry.expect("a readable entry").path();
            let text = std::fs::read_to_string(&path).expect("a readable example");
            (path, text)
        })
        .collect();
    sources.sort();
    sources
}

#[test]
fn every_rust_block_in_the_docs_is_an_excerpt_of_an_example() {
    let sources = example_sources();
    let mut checked = 0;
    for document in documents() {
        let markdown = std::fs::read_to_string(&document).expect("a readable document");
        for block in rust_blocks(&markdown) {
            let wanted = normalized(block.iter().map(String::as_str));
            assert!(
                !wanted.is_empty(),
                "{}: an empty Rust block",
                document.display()
            );
            let found = sources.iter().any(|(_, text)| {
                let have = normalized(text.lines());
                have.windows(wanted.len()).any(|w| w == wanted.as_slice())
            });
            assert!(
                found,
                "{}: this Rust block is in no example under examples/src/bin (copy it from one, \
                 or add an example that runs it):\n{}",
                document.display(),
                block.join("\n")
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "the documentation shows code ({checked} blocks)"
    );
}

/// The source files under `examples/clients/<dir>` ending in `extension`, with the client
/// libraries they use (`clients/<dir>`).
fn client_sources(dir: &str, extension: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for folder in [
        root().join("examples/clients").join(dir),
        root().join("clients").join(dir),
    ] {
        for entry in std::fs::read_dir(&folder).expect("the clients' folders exist") {
            let path = entry.expect("a readable entry").path();
            if path.extension().is_some_and(|e| e == extension) {
                texts.push(std::fs::read_to_string(&path).expect("a readable source"));
            }
        }
    }
    texts
}

#[test]
fn every_python_and_go_block_in_the_docs_is_an_excerpt_of_a_client_or_its_example() {
    let mut checked = 0;
    for (language, dir, extension) in [("python", "python", "py"), ("go", "go", "go")] {
        let sources = client_sources(dir, extension);
        for document in documents() {
            let markdown = std::fs::read_to_string(&document).expect("a readable document");
            for block in blocks_of(&markdown, language) {
                let wanted = normalized(block.iter().map(String::as_str));
                let found = sources.iter().any(|text| {
                    let have = normalized(text.lines());
                    have.windows(wanted.len()).any(|w| w == wanted.as_slice())
                });
                assert!(
                    found,
                    "{}: this {language} block is in no file of examples/clients/{dir} or \
                     clients/{dir}:\n{}",
                    document.display(),
                    block.join("\n")
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 2,
        "the gateway's clients are shown ({checked} blocks)"
    );
}

#[test]
fn the_docs_name_only_examples_that_exist() {
    for document in documents() {
        let markdown = std::fs::read_to_string(&document).expect("a readable document");
        for (i, _) in markdown.match_indices("examples/src/bin/") {
            let rest = &markdown[i + "examples/src/bin/".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
                .collect();
            assert!(
                root().join("examples/src/bin").join(&name).exists(),
                "{} names a missing example {name}",
                document.display()
            );
        }
    }
}
