// SPDX-License-Identifier: Apache-2.0
//! Each plan's time from the `quarry-sim` models, for an object stored on a drive.
//!
//! - host: `Csd::host_scan` (flash, the drive's link, host CPU), pipelined;
//! - gpu / fpga: the drive's host read (flash, the drive's link) feeding the card's run (its
//!   link in, card memory, compute, its link out), one pipeline in the drive's chunks (the
//!   host forwards each piece as it arrives; the models charge nothing per chunk);
//! - csd: `Csd::pushdown` (flash, drive DRAM, on-drive compute, only the result over the
//!   link).
//!
//! Every plan ends with the result in host memory. No wall clock: the same inputs always
//! give the same times.

use anyhow::{Context as _, Result};
use quarry_sim::{Csd, FpgaCard, Gpu, HostCpu, Profile, Timing};

use super::grid::{FPGA_PROFILE, GPU_PROFILE, HOST_PROFILE, Plan};

/// The devices of one sweep: the shared host, GPU and FPGA card, and the drives.
#[derive(Clone, Debug)]
pub struct Models {
    /// The host CPU of the host plan.
    pub host: HostCpu,
    /// The GPU of the GPU plan.
    pub gpu: Gpu,
    /// The FPGA card of the FPGA plan.
    pub fpga: FpgaCard,
    /// The drives objects live on, in sweep order.
    pub drives: Vec<Csd>,
}

impl Models {
    /// The built-in profiles: `xeon-host`, `a100-pcie`, `alveo-u250` and the named drives.
    pub fn builtin(drives: &[&str]) -> Result<Self> {
        let load = |name: &str| {
            Profile::builtin(name).with_context(|| format!("loading sim profile {name}"))
        };
        Ok(Self {
            host: HostCpu::from_profile(&load(HOST_PROFILE)?)?,
            gpu: Gpu::from_profile(&load(GPU_PROFILE)?)?,
            fpga: FpgaCard::from_profile(&load(FPGA_PROFILE)?)?,
            drives: drives
                .iter()
                .map(|name| Ok(Csd::from_profile(&load(name)?)?))
                .collect::<Result<_>>()?,
        })
    }

    /// How long `plan` takes to run `kernel` over `input` bytes stored on `drive`, keeping
    /// `output` bytes.
    pub fn time(
        &self,
        drive: &Csd,
        plan: Plan,
        kernel: &str,
        input: u64,
        output: u64,
    ) -> Result<Timing> {
        let timing = match plan {
            Plan::Host => drive.host_scan(&self.host, kernel, input)?,
            Plan::Gpu => {
                let card = self.gpu.run(kernel, input, output)?;
                through_host(drive, card, input)
            }
            Plan::Fpga => {
                let card = self.fpga.run(kernel, input, output)?;
                through_host(drive, card, input)
            }
            Plan::Csd => drive.pushdown(kernel, input, output)?,
        };
        Ok(timing)
    }
}

/// The drive's host read feeding a card's run: one pipeline over both devices' stages.
///
/// Two stages are both `link-to-host` here (the drive's and the card's result link); when
/// one of them is the bottleneck, `Timing::pipelined` leaves the other out of the fill and
/// drain as well, which under-counts by the card's result link for one chunk (at most the
/// result / chunks over a x16 link: negligible next to the drive's link).
fn through_host(drive: &Csd, card: Timing, input: u64) -> Timing {
    let read = drive.host_read(input);
    let chunks = read.chunks;
    let mut stages = read.stages;
    stages.extend(card.stages);
    Timing::pipelined(stages, chunks)
}

#[cfg(test)]
mod tests {
    use quarry_sim::Stage;

    use super::*;

    const GIB: u64 = 1 << 30;

    fn models() -> Models {
        Models::builtin(&["smartssd"]).expect("built-in profiles load")
    }

    #[test]
    fn card_plans_pay_the_drive_read_first() {
        let m = models();
        let drive = &m.drives[0];
        let read = drive.host_read(GIB);
        for plan in [Plan::Gpu, Plan::Fpga] {
            let t = m
                .time(drive, plan, "grep", GIB, GIB / 100)
                .expect("models run");
            assert!(t.total >= read.total, "{plan}: {t} vs read {read}");
            assert!(t.stage(Stage::Flash).is_some());
            assert!(t.stage(Stage::LinkToDevice).is_some());
        }
    }

    #[test]
    fn host_plan_is_the_drive_host_scan_and_csd_plan_its_pushdown() {
        let m = models();
        let drive = &m.drives[0];
        let host = m
            .time(drive, Plan::Host, "csv-filter", GIB, 0)
            .expect("host");
        assert_eq!(
            host,
            drive.host_scan(&m.host, "csv-filter", GIB).expect("scan")
        );
        let csd = m
            .time(drive, Plan::Csd, "csv-filter", GIB, GIB / 10)
            .expect("csd");
        assert_eq!(
            csd,
            drive
                .pushdown("csv-filter", GIB, GIB / 10)
                .expect("pushdown")
        );
    }

    #[test]
    fn an_unknown_kernel_is_an_error_naming_it() {
        let m = models();
        let err = m
            .time(&m.drives[0], Plan::Csd, "no-such-kernel", GIB, 1)
            .expect_err("unknown kernel");
        assert!(format!("{err:#}").contains("no-such-kernel"), "{err:#}");
    }
}
