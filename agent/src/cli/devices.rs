// SPDX-License-Identifier: Apache-2.0
//! `quarry devices`: the backends the scheduler places jobs on, over the admin API
//! (`GET /v1/devices`): one table of devices (class, load, link) and one of the rates measured
//! on each (by the calibration at start and by real jobs since).

use bytesize::ByteSize;

use super::CliError;
use super::admin::AdminClient;
use super::s3::print_stdout;
use super::table;
use crate::admin::DeviceListing;

/// Runs `quarry devices`.
pub(crate) async fn run(admin: &AdminClient, raw_json: bool) -> Result<(), CliError> {
    if raw_json {
        print_stdout(&admin.get_text("/v1/devices").await?);
        return Ok(());
    }
    let devices: Vec<DeviceListing> = admin.get("/v1/devices").await?;
    print_stdout(&device_table(&devices));
    let rates = rate_table(&devices);
    if rates.lines().count() > 1 {
        print_stdout("\n");
        print_stdout(&rates);
    } else {
        print_stdout("\nno rates measured yet (calibration runs in the background at start)\n");
    }
    Ok(())
}

fn device_table(devices: &[DeviceListing]) -> String {
    let rows: Vec<Vec<String>> = devices
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                d.class.clone(),
                format!("{}/{}", d.running, d.capacity),
                d.queued.to_string(),
                d.link_bytes_per_sec
                    .map_or_else(|| "host memory".to_owned(), per_second),
                table::or_dash(&d.description),
            ]
        })
        .collect();
    table::render(
        &["ID", "CLASS", "RUNNING", "QUEUED", "LINK", "DESCRIPTION"],
        &rows,
    )
}

fn rate_table(devices: &[DeviceListing]) -> String {
    let rows: Vec<Vec<String>> = devices
        .iter()
        .flat_map(|d| {
            d.rates.iter().map(|r| {
                vec![
                    d.id.clone(),
                    r.work.clone(),
                    per_second(r.bytes_per_sec),
                    format!("{} us", r.fixed_us),
                    r.samples.to_string(),
                ]
            })
        })
        .collect();
    table::render(&["DEVICE", "WORK", "THROUGHPUT", "FIXED", "SAMPLES"], &rows)
}

/// `bytes_per_sec` as `1.2 GiB/s`.
fn per_second(bytes_per_sec: f64) -> String {
    if !bytes_per_sec.is_finite() || bytes_per_sec <= 0.0 {
        return "-".to_owned();
    }
    // Rates are far below 2^63 bytes per second; the cast saturates beyond.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a positive finite rate, rounded to whole bytes for display"
    )]
    let whole = bytes_per_sec.round() as u64;
    format!("{}/s", ByteSize::b(whole))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::RateListing;

    fn device(id: &str, rates: Vec<RateListing>) -> DeviceListing {
        DeviceListing {
            id: id.to_owned(),
            class: "cpu".to_owned(),
            description: "native kernels on 2 workers".to_owned(),
            running: 1,
            capacity: 2,
            queued: 0,
            link_bytes_per_sec: None,
            rates,
        }
    }

    #[test]
    fn tables_name_each_device_and_rate() {
        let devices = vec![
            device(
                "native",
                vec![RateListing {
                    work: "grep".to_owned(),
                    bytes_per_sec: 2.0e9,
                    fixed_us: 40,
                    samples: 3,
                }],
            ),
            DeviceListing {
                link_bytes_per_sec: Some(3.0e9),
                class: "gpu".to_owned(),
                ..device("opencl-gpu-0", Vec::new())
            },
        ];
        let table = device_table(&devices);
        assert!(table.starts_with("ID"), "{table}");
        assert!(table.contains("native") && table.contains("1/2") && table.contains("host memory"));
        assert!(
            table.contains("opencl-gpu-0") && table.contains("2.8 GiB/s"),
            "{table}"
        );
        let rates = rate_table(&devices);
        assert_eq!(rates.lines().count(), 2, "{rates}");
        assert!(rates.contains("grep") && rates.contains("1.9 GiB/s") && rates.contains("40 us"));
    }

    #[test]
    fn a_rate_that_is_not_positive_shows_as_a_dash() {
        assert_eq!(per_second(0.0), "-");
        assert_eq!(per_second(f64::NAN), "-");
    }
}
