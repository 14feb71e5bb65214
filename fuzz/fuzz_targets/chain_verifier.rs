//! Arbitrary bytes as the COPY text of a chain table, through the streaming
//! verifier (row splitter, field parser, unescaping, recipe, checks, head
//! collection and anchors). The first byte picks a chunk size: feeding the
//! same bytes whole and in chunks must give the same outcome.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgkeep::chain::{ChainPlan, Verifier, ChainOptions};
use pgkeep::config::policy::Part;
use pgkeep::config::Policy;
use std::sync::{Arc, OnceLock};

/// The fixture policy, plus a literal and a bytea part.
fn plan() -> Arc<ChainPlan> {
    static PLAN: OnceLock<Arc<ChainPlan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let text = include_str!("../../tests/fixtures/chain_events.toml");
        let mut def = Policy::parse(text, "fuzz").unwrap().chain.remove(0);
        def.recipe.parts.push(Part::from_flag("lit:v1"));
        def.recipe.parts.push(Part::from_flag("bytea:blob"));
        let cols = [
            "stream_type", "stream_id", "stream_seq", "event_type", "payload", "blob",
            "prev_hash", "hash",
        ];
        let cols: Vec<String> = cols.map(String::from).to_vec();
        Arc::new(ChainPlan::new(&def, &cols).unwrap())
    })
    .clone()
}

fn run(chunks: &[&[u8]]) -> Option<String> {
    let opts = ChainOptions {
        collect_heads: true,
        ..ChainOptions::default()
    };
    let mut v = Verifier::new(plan(), opts);
    for c in chunks {
        v.feed(c).ok()?;
    }
    let (report, heads) = v.finish().ok()?;
    // Verify again with the heads as anchors: a stream must match itself.
    let mut again = Verifier::new(
        plan(),
        ChainOptions {
            anchors: Some(heads),
            ..ChainOptions::default()
        },
    );
    for c in chunks {
        again.feed(c).ok()?;
    }
    let (anchored, _) = again.finish().ok()?;
    assert_eq!(anchored.events, report.events);
    Some(serde_json::to_string(&report).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let whole = run(&[rest]);
    let chunks: Vec<&[u8]> = rest.chunks(usize::from(size % 16) + 1).collect();
    assert_eq!(run(&chunks), whole, "chunking changed the outcome");
});
