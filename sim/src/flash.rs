// SPDX-License-Identifier: Apache-2.0
//! NAND flash behind the drive's controller: channels x per-channel bandwidth, a read latency
//! per page (tR) and a bound on page reads in flight (queue depth).
//!
//! Model: a read of N bytes is striped page by page over the channels. The internal
//! bandwidth is the lower of what the channels carry (channels x channel bandwidth) and what
//! the reads in flight sustain (Little's law: queue depth x page / tR). With pages =
//! ceil(N / page) and the busiest channel carrying ceil(pages / channels) pages:
//!
//! read time = tR + ceil(pages / channels) x page / (internal bandwidth / channels).

use crate::clock::SimDuration;
use crate::error::SimError;
use crate::rate::Bandwidth;

/// A flash array: channels, their bandwidth, page size, read latency and queue depth.
#[derive(Clone, Debug, PartialEq)]
pub struct Flash {
    channels: u32,
    channel_bandwidth: Bandwidth,
    page_bytes: u64,
    read_latency: SimDuration,
    queue_depth: u32,
}

impl Flash {
    /// A flash array; `channels`, `page_bytes` and `queue_depth` must be at least 1 and the
    /// read latency above zero.
    pub fn new(
        channels: u32,
        channel_bandwidth: Bandwidth,
        page_bytes: u64,
        read_latency: SimDuration,
        queue_depth: u32,
    ) -> Result<Self, SimError> {
        let positive = "must be at least 1";
        if channels == 0 {
            return Err(SimError::figure("flash", "channels", channels, positive));
        }
        if page_bytes == 0 {
            return Err(SimError::figure("flash", "page size", page_bytes, positive));
        }
        if queue_depth == 0 {
            return Err(SimError::figure(
                "flash",
                "queue_depth",
                queue_depth,
                positive,
            ));
        }
        if read_latency == SimDuration::ZERO {
            return Err(SimError::figure(
                "flash",
                "read_latency_us",
                0,
                "a page read takes time; give tR from the NAND data sheet (tens of microseconds)",
            ));
        }
        Ok(Self {
            channels,
            channel_bandwidth,
            page_bytes,
            read_latency,
            queue_depth,
        })
    }

    /// Number of channels.
    pub fn channels(&self) -> u32 {
        self.channels
    }

    /// Page size in bytes.
    pub fn page_bytes(&self) -> u64 {
        self.page_bytes
    }

    /// Read latency of one page (tR).
    pub fn read_latency(&self) -> SimDuration {
        self.read_latency
    }

    /// Sustained internal read bandwidth: min(channels x channel bandwidth,
    /// queue depth x page / tR).
    pub fn internal_bandwidth(&self) -> Bandwidth {
        let channels = self.channel_bandwidth.bytes_per_sec() * f64::from(self.channels);
        let in_flight =
            f64::from(self.queue_depth) * self.page_bytes as f64 / self.read_latency.as_secs_f64();
        Bandwidth::new(channels.min(in_flight), "flash", "internal bandwidth")
            .expect("a product of positive finite figures is positive and finite")
    }

    /// Time to read `bytes` from flash, striped over the channels (zero bytes: no time).
    pub fn read_time(&self, bytes: u64) -> SimDuration {
        if bytes == 0 {
            return SimDuration::ZERO;
        }
        self.read_latency + self.streaming_time(bytes)
    }

    /// [`Flash::read_time`] less the first page's latency: the time the channels are busy.
    pub fn streaming_time(&self, bytes: u64) -> SimDuration {
        let pages = bytes.div_ceil(self.page_bytes);
        let busiest_channel_pages = pages.div_ceil(u64::from(self.channels));
        let per_channel = self
            .internal_bandwidth()
            .scaled(1.0 / f64::from(self.channels))
            .expect("channels >= 1 keeps the per-channel rate positive");
        per_channel.time_for(busiest_channel_pages * self.page_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flash(channels: u32, mb_s: f64, page: u64, tr_us: u64, qd: u32) -> Flash {
        Flash::new(
            channels,
            Bandwidth::new(mb_s * 1e6, "t", "channel").unwrap(),
            page,
            SimDuration::from_micros(tr_us),
            qd,
        )
        .unwrap()
    }

    #[test]
    fn read_is_striped_over_channels() {
        // 10 pages of 4096 B over 4 channels: the busiest carries 3 pages = 12,288 B at
        // 100 MB/s = 122,880 ns, plus tR = 50 us.
        let f = flash(4, 100.0, 4096, 50, 1024);
        assert_eq!(f.read_time(40_960).as_nanos(), 122_880 + 50_000);
        // One byte still reads a whole page on one channel.
        assert_eq!(f.read_time(1).as_nanos(), 40_960 + 50_000);
        assert_eq!(f.read_time(0), SimDuration::ZERO);
    }

    #[test]
    fn more_channels_read_faster_until_the_queue_depth_binds() {
        let narrow = flash(2, 100.0, 4096, 50, 1024);
        let wide = flash(8, 100.0, 4096, 50, 1024);
        assert!(wide.read_time(1 << 20) < narrow.read_time(1 << 20));
        // Queue depth 2: 2 x 4096 B / 50 us = 163.84 MB/s, below 8 x 100 MB/s.
        let shallow = flash(8, 100.0, 4096, 50, 2);
        let bw = shallow.internal_bandwidth().bytes_per_sec();
        assert!((bw - 163_840_000.0).abs() < 1e-3, "{bw}");
        assert!(shallow.read_time(1 << 20) > wide.read_time(1 << 20));
    }

    #[test]
    fn zero_figures_are_refused() {
        let bw = Bandwidth::new(1e8, "t", "c").unwrap();
        assert!(Flash::new(0, bw, 4096, SimDuration::from_micros(50), 1).is_err());
        assert!(Flash::new(1, bw, 0, SimDuration::from_micros(50), 1).is_err());
        assert!(Flash::new(1, bw, 4096, SimDuration::ZERO, 1).is_err());
        assert!(Flash::new(1, bw, 4096, SimDuration::from_micros(50), 0).is_err());
    }
}
