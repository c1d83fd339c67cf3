//! The README's self-telemetry table is generated from the one list of
//! counters (`ebpf_core::stats::COUNTERS`): this test fails when they differ,
//! and `make docs` (OTEL_EBPF_UPDATE_README=1) rewrites the table.

use std::path::PathBuf;

use ebpf_core::stats::{Kind, COUNTERS};

const BEGIN: &str = "<!-- BEGIN self-telemetry table: generated from ebpf-core/src/stats.rs by `make docs` -->\n";
const END: &str = "<!-- END self-telemetry table -->";

fn table() -> String {
    let mut out =
        String::from("| metric | kind | unit | C ABI and log name | what it counts |\n|---|---|---|---|---|\n");
    for c in COUNTERS {
        let kind = match c.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let attribute = c.attribute.map(|(k, v)| format!(" (`{k}={v}`)")).unwrap_or_default();
        out.push_str(&format!(
            "| `{}`{attribute} | {kind} | `{}` | `{}` | {} |\n",
            c.metric,
            c.unit,
            c.name,
            c.description()
        ));
    }
    out
}

#[test]
fn readme_self_telemetry_table_is_the_counter_list() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme.find(BEGIN).expect("README.md: the self-telemetry table's BEGIN marker") + BEGIN.len();
    let end = start + readme[start..].find(END).expect("README.md: the self-telemetry table's END marker");
    let want = table();
    if std::env::var_os("OTEL_EBPF_UPDATE_README").is_some() {
        std::fs::write(&path, format!("{}{want}{}", &readme[..start], &readme[end..])).unwrap();
        return;
    }
    assert!(
        readme[start..end] == want,
        "README.md's self-telemetry table is out of date with ebpf-core/src/stats.rs: run `make docs`.\nWant:\n{want}"
    );
}
