//! The README's table of gevent / greenlet / asyncio names: each name in
//! its left column must be findable in greenhub's docs, either as the name
//! of an item or as a `#[doc(alias)]` on one, so that searching the docs
//! for the gevent name lands on the greenhub item.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// The API names in the left column of the README's names table.
fn gevent_names(readme: &str) -> BTreeSet<String> {
    let table = readme
        .split("## gevent / greenlet names in greenhub")
        .nth(1)
        .expect("the README has the names table")
        .split("\n## ")
        .next()
        .unwrap();
    let mut names = BTreeSet::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let left = row[1..].split(" | ").next().unwrap();
        // Each `code span` of the left cell.
        for span in left.split('`').skip(1).step_by(2) {
            let span = span.split(':').next().unwrap(); // "LoopExit: This operation..."
                                                        // Arguments are not names: drop "(...)".
            let mut bare = String::new();
            let mut depth = 0;
            for c in span.chars() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ if depth == 0 => bare.push(c),
                    _ => {}
                }
            }
            // "gevent.queue.Queue/JoinableQueue": the last dotted part of
            // each slash-separated piece names the API.
            for piece in bare.split(['/', ',', ' ', '+']) {
                if let Some(name) = piece.rsplit('.').next().filter(|n| !n.is_empty()) {
                    names.insert(name.to_owned());
                }
            }
        }
    }
    names
}

fn sources(dir: &Path, out: &mut String) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn every_gevent_name_in_the_readme_table_is_an_item_or_a_doc_alias() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let names = gevent_names(&readme);
    assert!(names.len() > 40, "the table was read: {names:?}");
    let mut src = String::new();
    sources(&root.join("src"), &mut src);
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| {
            let alias = format!("doc(alias = \"{name}\")");
            let item = ["fn", "struct", "enum", "type", "mod", "trait"].iter().any(|kw| {
                src.contains(&format!("pub {kw} {name}")) || src.contains(&format!("pub {kw} {name}<"))
            });
            !src.contains(&alias) && !item
        })
        .collect();
    assert!(
        missing.is_empty(),
        "gevent names with no greenhub item or doc alias: {missing:?}"
    );
}
