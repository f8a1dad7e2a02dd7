//! CPU per event of the push path's pure part (parse + normalise + decide) for
//! the standard payload, next to a bare `serde_json::from_slice` of the same bytes.
//! Run: `cargo bench -p shared --bench normalise`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use shared::domain::event::{normalise, NormaliseContext, ParsedEvent};
use shared::engine::{decide, fingerprint};
use shared::intake::integrations::{BodyFormat, IntegrationKind, ParseSettings, PushBody};

const PAYLOAD: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/standard/firing.json"
));

fn normalise_and_decide(bytes: &[u8]) -> usize {
    let body = PushBody {
        bytes,
        format: BodyFormat::Json,
    };
    let parsed = IntegrationKind::Standard
        .parse(&body, &ParseSettings::default())
        .unwrap_or_default();
    let ctx = NormaliseContext {
        integration_name: "bench",
        now_ms: 1_763_626_800_000,
    };
    let mut n = 0;
    for p in parsed {
        if let ParsedEvent::Apply(ev) = p {
            if let Ok(ev) = normalise(ev, &ctx) {
                let fp = fingerprint(&ev);
                n += matches!(
                    decide(None, &ev, &fp, ctx.now_ms),
                    shared::engine::Decision::Open
                ) as usize;
            }
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    assert_eq!(normalise_and_decide(PAYLOAD), 1);
    let mut group = c.benchmark_group("standard_payload");
    group.bench_function("serde_json_from_slice", |b| {
        b.iter(|| {
            serde_json::from_slice::<serde_json::Value>(black_box(PAYLOAD)).map(|v| v.is_object())
        })
    });
    group.bench_function("normalise_and_decide", |b| {
        b.iter(|| normalise_and_decide(black_box(PAYLOAD)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
