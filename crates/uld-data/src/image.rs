//! A multi-channel f32 image in CHW order, the network's input layout.
//!
//! A leaf module: samples are built into it and augmentation warps and
//! jitters it. Public as `uld_data::sample::ImageChw`.

/// `channels x height x width` values, channel after channel, row after row.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageChw {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

impl ImageChw {
    /// An image with every value `fill`.
    pub fn filled(channels: usize, height: usize, width: usize, fill: f32) -> Self {
        Self {
            channels,
            height,
            width,
            data: vec![fill; channels * height * width],
        }
    }

    pub fn plane_len(&self) -> usize {
        self.height * self.width
    }

    pub fn channel(&self, c: usize) -> &[f32] {
        let n = self.plane_len();
        &self.data[c * n..(c + 1) * n]
    }

    pub fn channel_mut(&mut self, c: usize) -> &mut [f32] {
        let n = self.plane_len();
        &mut self.data[c * n..(c + 1) * n]
    }

    pub fn get(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.height + y) * self.width + x]
    }
}
