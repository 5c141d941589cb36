// SPDX-License-Identifier: Apache-2.0
//! CPU vs OpenCL for the CSV kernels (`csv-filter`, `csv-agg`) and `reed-solomon`: fixed edge
//! cases (empty and one-byte objects, a header alone, quoted newlines across block and chunk
//! edges, `\r\n`, multi-byte UTF-8, rows longer than a device chunk, an unterminated quote)
//! and random CSV text with random parameters.

use bytes::Bytes;
use proptest::prelude::*;
use quarry_kernels::Params;
use quarry_offload::backend::opencl::{ExecConfig, ExecError, execute};
use reed_solomon_erasure::galois_8::ReedSolomon;

use super::assert_same_on_every_device;

/// A small table with `\r\n` endings, quoted commas and escaped quotes, and a short row.
const PEOPLE: &[u8] = "id,name,age,city\r\n\
    1,\"Smith, Ann\",34,Zürich\r\n\
    2,Bob,7,東京\r\n\
    3,\"Li \"\"Lee\"\"\",120,\"São\nPaulo\"\r\n\
    4,Eve\r\n\
    5,Zoë,-0.5,\"\"\r\n\
    6,\"\",n/a,Köln"
    .as_bytes();

/// A deterministic generator (xorshift64) for the larger fixed inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> usize {
        usize::try_from(self.next() % n).unwrap_or(0)
    }
}

/// `rows` CSV rows under a header `id,text,amount,tag`: quoted texts holding newlines, commas
/// and escaped quotes (some longer than a 4096-byte block, so rows and quoted newlines straddle
/// block and chunk edges), amounts that are numbers or not, multi-byte tags, mixed `\n` and
/// `\r\n` endings; the last row lacks its newline unless `terminated`.
fn table(rows: usize, seed: u64, terminated: bool) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut out = b"id,text,amount,tag\n".to_vec();
    for i in 0..rows {
        let text = match rng.below(12) {
            0 => format!(
                "\"{}\"",
                "long,\n\"\"quoted\"\" ".repeat(300 + rng.below(400))
            ),
            1 => String::new(),
            2 => "\"\"".to_owned(),
            3 => "\"multi\nline, \"\"q\"\"\"".to_owned(),
            _ => "word ".repeat(rng.below(20)),
        };
        let amount = match rng.below(8) {
            0 => "n/a".to_owned(),
            1 => String::new(),
            2 => format!("\"{}.{}\"", rng.below(1000), rng.below(100)),
            3 => format!("-{}.{:07}", rng.below(100_000), rng.below(10_000_000)),
            _ => format!("{}.{:02}", rng.below(1_000_000), rng.below(100)),
        };
        let tag = ["a", "é", "東京", "😀x", "b\"c", ""][rng.below(6)];
        let ending = if rng.below(3) == 0 { "\r\n" } else { "\n" };
        out.extend_from_slice(format!("{i},{text},{amount},{tag}").as_bytes());
        if terminated || i + 1 < rows {
            out.extend_from_slice(ending.as_bytes());
        }
    }
    out
}

/// Every csv-filter parameter set of the fixed cases.
const FILTERS: &[&[(&str, &str)]] = &[
    &[("column", "name"), ("value", "Bob")],
    &[("column", "#1"), ("value", "Li \"Lee\"")],
    &[
        ("column", "age"),
        ("op", "ge"),
        ("value", "34"),
        ("numeric", "true"),
    ],
    &[
        ("column", "age"),
        ("op", "lt"),
        ("value", "100"),
        ("numeric", "true"),
        ("select", "age,#1,#9"),
    ],
    &[("column", "city"), ("op", "contains"), ("value", "ö")],
    &[
        ("column", "city"),
        ("op", "ne"),
        ("value", "東京"),
        ("select", "city,id"),
    ],
    &[
        ("column", "#0"),
        ("op", "gt"),
        ("value", "2"),
        ("header", "false"),
    ],
    &[
        ("column", "#3"),
        ("op", "contains"),
        ("value", "\n"),
        ("header", "false"),
        ("select", "#3"),
    ],
];

/// The csv-filter parameter sets over [`table`].
const TABLE_FILTERS: &[&[(&str, &str)]] = &[
    &[("column", "text"), ("op", "contains"), ("value", "\"q\"")],
    &[
        ("column", "amount"),
        ("op", "gt"),
        ("value", "5000.5"),
        ("numeric", "true"),
    ],
    &[
        ("column", "amount"),
        ("op", "le"),
        ("value", "-1"),
        ("numeric", "true"),
        ("select", "tag,amount"),
    ],
    &[("column", "tag"), ("value", "東京"), ("select", "id,text")],
    &[("column", "tag"), ("op", "ne"), ("value", "a")],
    &[
        ("column", "#2"),
        ("op", "ge"),
        ("value", "5"),
        ("header", "false"),
    ],
];

#[test]
fn csv_filter_small_tables_give_the_same_bytes() {
    for params in FILTERS {
        assert_same_on_every_device("csv-filter", params, PEOPLE);
        let mut terminated = PEOPLE.to_vec();
        terminated.extend_from_slice(b"\r\n");
        assert_same_on_every_device("csv-filter", params, &terminated);
    }
}

#[test]
fn csv_filter_degenerate_objects_give_the_same_bytes() {
    let inputs: &[&[u8]] = &[
        b"",
        b"a",
        b"\n",
        b"\"",
        b",",
        b"a,name\n",
        b"a,name",
        b"a,name\r\n",
        b"a,name\n\n\n",
        b"a,name\n1,\"open\n2,x\n3,y\n",
        "a,name\né,日本\n".as_bytes(),
    ];
    for input in inputs {
        assert_same_on_every_device("csv-filter", &[("column", "#1"), ("value", "x")], input);
        assert_same_on_every_device(
            "csv-filter",
            &[
                ("column", "#0"),
                ("op", "ne"),
                ("value", "x"),
                ("header", "false"),
            ],
            input,
        );
        assert_same_on_every_device(
            "csv-filter",
            &[
                ("column", "#1"),
                ("op", "ge"),
                ("value", ""),
                ("select", "#1,#0"),
            ],
            input,
        );
    }
}

#[test]
fn csv_filter_rows_across_block_and_chunk_edges_give_the_same_bytes() {
    let inputs = [
        table(400, 3, true),
        table(400, 5, false),
        table(60, 17, false),
    ];
    for input in &inputs {
        for params in TABLE_FILTERS {
            assert_same_on_every_device("csv-filter", params, input);
        }
    }
}

#[test]
fn csv_filter_a_row_longer_than_a_device_chunk_gives_the_same_bytes() {
    let mut input = b"k,v\n1,\"".to_vec();
    input.extend_from_slice("x,\n\"\"é".repeat(3000).as_bytes());
    input.extend_from_slice(b"\"\n2,short\n3,\"");
    input.extend_from_slice("never closed\n".repeat(800).as_bytes());
    for value in ["short", "x", "é"] {
        assert_same_on_every_device(
            "csv-filter",
            &[("column", "v"), ("op", "contains"), ("value", value)],
            &input,
        );
    }
}

/// The csv-agg parameter sets of the fixed cases.
const AGGS: &[&[(&str, &str)]] = &[
    &[("column", "age")],
    &[("column", "#2"), ("fn", "avg")],
    &[
        ("column", "age"),
        ("where_column", "city"),
        ("where_op", "contains"),
        ("where_value", "ö"),
    ],
    &[("column", "amount")],
    &[
        ("column", "amount"),
        ("fn", "sum"),
        ("where_column", "tag"),
        ("where_value", "東京"),
    ],
    &[
        ("column", "#2"),
        ("where_column", "#0"),
        ("where_op", "lt"),
        ("where_value", "100"),
        ("where_numeric", "true"),
    ],
    &[("column", "#0"), ("header", "false")],
];

#[test]
fn csv_agg_tables_give_the_same_bytes() {
    let inputs = [
        PEOPLE.to_vec(),
        Vec::new(),
        b"a".to_vec(),
        b"\n".to_vec(),
        b"age,amount\n".to_vec(),
        b"age,amount\n1,\"open\n2,3\n".to_vec(),
        table(400, 7, true),
        table(300, 9, false),
    ];
    for input in &inputs {
        let names = String::from_utf8_lossy(
            &input[..input
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(input.len())],
        )
        .into_owned();
        for params in AGGS {
            // Named columns only where the header has them.
            let named = params
                .iter()
                .filter(|(k, v)| k.ends_with("column") && !v.starts_with('#'))
                .all(|(_, v)| names.split(',').any(|n| n == *v));
            if named {
                assert_same_on_every_device("csv-agg", params, input);
            }
        }
    }
}

#[test]
fn csv_agg_sums_past_the_range_of_i64_give_the_same_bytes() {
    let mut input = "999999999999.999999\n".repeat(5000);
    input.push_str(&"-999999999999.999998\n".repeat(3000));
    assert_same_on_every_device(
        "csv-agg",
        &[("column", "#0"), ("header", "false")],
        input.as_bytes(),
    );
}

/// The `reed-solomon` parameter sets of the diff cases: (k, m, unit).
const CODES: &[(usize, usize, usize)] = &[
    (4, 2, 4096),
    (1, 3, 64),
    (10, 4, 64),
    (3, 16, 1024),
    (32, 1, 128),
];

#[test]
fn reed_solomon_gives_the_same_bytes() {
    for &(k, m, unit) in CODES {
        let (data, parity, unit_text) = (k.to_string(), m.to_string(), unit.to_string());
        let params = [
            ("data", data.as_str()),
            ("parity", &parity),
            ("unit", &unit_text),
        ];
        let stripe = k * unit;
        for len in [
            0,
            1,
            stripe - 1,
            stripe,
            stripe + 1,
            3 * stripe + 4097,
            40_000,
        ] {
            assert_same_on_every_device("reed-solomon", &params, &bytes(len, len as u64 + 1));
        }
    }
}

#[test]
fn reed_solomon_device_parity_rebuilds_lost_units() {
    let (k, m, unit) = (6, 3, 256);
    let input = bytes(5 * k * unit + 1000, 99);
    let Some(parity) = device_parity(&[("data", "6"), ("parity", "3"), ("unit", "256")], &input)
    else {
        return;
    };
    let codec = ReedSolomon::new(k, m).expect("codec");
    for (s, stripe) in input.chunks(k * unit).enumerate() {
        let mut padded = stripe.to_vec();
        padded.resize(k * unit, 0);
        let originals: Vec<Vec<u8>> = padded
            .chunks(unit)
            .chain(parity[s * m * unit..(s + 1) * m * unit].chunks(unit))
            .map(<[u8]>::to_vec)
            .collect();
        let mut shards: Vec<Option<Vec<u8>>> = originals.iter().cloned().map(Some).collect();
        for lost in [0, 4, 7] {
            shards[lost] = None;
        }
        codec.reconstruct(&mut shards).expect("rebuilds");
        let rebuilt: Vec<Vec<u8>> = shards.into_iter().map(|u| u.expect("rebuilt")).collect();
        assert_eq!(rebuilt, originals, "stripe {s}");
    }
}

/// The device output of the first OpenCL device for `input` in one piece, or `None` without
/// OpenCL (the harness says so, or fails under `QUARRY_REQUIRE_OPENCL=1`).
fn device_parity(params: &[(&str, &str)], input: &[u8]) -> Option<Vec<u8>> {
    let kernel = quarry_kernels::find("reed-solomon").expect("registered");
    let params = Params::new(
        params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
    .validate(kernel.info())
    .expect("valid");
    let bound = kernel.bind(&params).expect("binds");
    let runtime = super::runtime()?;
    let device = runtime.devices().first()?;
    let config = ExecConfig {
        chunk_size: 1 << 20,
        in_flight: 2,
        max_record: 1 << 20,
    };
    let mut out = Vec::new();
    execute(
        device,
        bound.device().expect("a device variant"),
        bound.framing(),
        &config,
        [Ok(Bytes::copy_from_slice(input))],
        |o| {
            out.extend_from_slice(&o);
            Ok::<(), ExecError>(())
        },
    )
    .expect("the device run");
    Some(out)
}

/// `len` bytes without a short period.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    (0..len).map(|_| rng.next().to_le_bytes()[3]).collect()
}

/// One CSV field: plain, numeric, quoted (with escapes, commas and newlines), multi-byte, or
/// loose bytes that break the quoting rules.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 ]{0,8}",
        "-?[0-9]{1,13}(\\.[0-9]{1,8})?",
        "[a-z,\n\"é ]{0,12}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        "[é日😀x]{1,3}",
        "[a\"\r,]{0,3}",
        "[ab\n,]{4000,4300}".prop_map(|s| format!("\"{s}\"")),
    ]
}

/// CSV text of random rows, with `\n` or `\r\n` endings, maybe unterminated.
fn csv_text() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(proptest::collection::vec(field(), 0..6), 0..50),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(rows, crlf, terminated)| {
            let ending = if crlf { "\r\n" } else { "\n" };
            let mut text = rows
                .iter()
                .map(|row| row.join(","))
                .collect::<Vec<_>>()
                .join(ending);
            if terminated && !text.is_empty() {
                text.push_str(ending);
            }
            text.into_bytes()
        })
}

/// csv-filter parameters that bind on any input (columns by index).
fn filter_params() -> impl Strategy<Value = Vec<(String, String)>> {
    let op = prop_oneof![
        Just("eq"),
        Just("ne"),
        Just("lt"),
        Just("le"),
        Just("gt"),
        Just("ge"),
        Just("contains"),
    ];
    (
        0..5_usize,
        op,
        any::<bool>(),
        "[a-z0-9é\", ]{0,3}",
        "-?[0-9]{1,4}(\\.[0-9]{1,7})?",
        proptest::option::of(proptest::collection::vec(0..6_usize, 1..4)),
        any::<bool>(),
    )
        .prop_map(|(column, op, numeric, text, number, select, header)| {
            let numeric = numeric && op != "contains";
            let mut params = vec![
                ("column".to_owned(), format!("#{column}")),
                ("op".to_owned(), op.to_owned()),
                ("value".to_owned(), if numeric { number } else { text }),
                ("numeric".to_owned(), numeric.to_string()),
                ("header".to_owned(), header.to_string()),
            ];
            if let Some(select) = select {
                let list: Vec<String> = select.iter().map(|c| format!("#{c}")).collect();
                params.push(("select".to_owned(), list.join(",")));
            }
            params
        })
}

/// csv-agg parameters that bind on any input (columns by index), with or without a filter.
fn agg_params() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        0..5_usize,
        prop_oneof![
            Just("all"),
            Just("count"),
            Just("sum"),
            Just("min"),
            Just("avg")
        ],
        proptest::option::of((0..5_usize, filter_params())),
        any::<bool>(),
    )
        .prop_map(|(column, func, filter, header)| {
            let mut params = vec![
                ("column".to_owned(), format!("#{column}")),
                ("fn".to_owned(), func.to_owned()),
                ("header".to_owned(), header.to_string()),
            ];
            if let Some((where_column, filter)) = filter {
                params.push(("where_column".to_owned(), format!("#{where_column}")));
                for (name, value) in filter {
                    if matches!(name.as_str(), "op" | "value" | "numeric") {
                        params.push((format!("where_{name}"), value));
                    }
                }
            }
            params
        })
}

fn borrowed(params: &[(String, String)]) -> Vec<(&str, &str)> {
    params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn csv_filter_any_csv_gives_the_same_bytes(input in csv_text(), params in filter_params()) {
        assert_same_on_every_device("csv-filter", &borrowed(&params), &input);
    }

    #[test]
    fn csv_agg_any_csv_gives_the_same_bytes(input in csv_text(), params in agg_params()) {
        assert_same_on_every_device("csv-agg", &borrowed(&params), &input);
    }
}
