//! A second, deliberately different detector for the tests: one stride-4
//! level, a CenterNet-style centre heatmap with a penalty-reduced focal
//! loss and a log-size regression at each lesion's centre. It shares
//! nothing with the FCOS detector but the `Detector`/`BuildDetector` traits.

use tch::{Kind, Tensor, nn, nn::Module};
use uld_core::{Box2, Result};
use uld_model::{BuildDetector, Detection, Detector, ImageTargets, LossTerms, ModelConfig};

const STRIDE: i64 = 4;
const MAX_DETECTIONS: i64 = 20;

#[derive(Debug)]
pub struct HeatmapDetector {
    body: nn::Sequential,
    heat: nn::Conv2D,
    size: nn::Conv2D,
}

impl BuildDetector for HeatmapDetector {
    fn build(p: &nn::Path, config: &ModelConfig) -> Result<Self> {
        let conv = |name: &str, i, o, stride| {
            let c = nn::ConvConfig {
                stride,
                padding: 1,
                ..Default::default()
            };
            nn::conv2d(p / name, i, o, 3, c)
        };
        let body = nn::seq()
            .add(conv("down1", config.input.slices, 16, 2))
            .add_fn(|x| x.relu())
            .add(conv("down2", 16, 32, 2))
            .add_fn(|x| x.relu())
            .add(conv("mix", 32, 32, 1))
            .add_fn(|x| x.relu());
        let prior = nn::ConvConfig {
            bs_init: nn::Init::Const(-2.19),
            ..Default::default()
        };
        Ok(Self {
            body,
            heat: nn::conv2d(p / "heat", 32, 1, 1, prior),
            size: nn::conv2d(p / "size", 32, 2, 1, Default::default()),
        })
    }

    /// Two stride-2 convolutions.
    fn size_divisor(_: &ModelConfig) -> usize {
        STRIDE as usize
    }
}

/// Dense targets on the `rows` x `cols` grid of one image.
struct GridTargets {
    /// Gaussian peaks, max over lesions.
    heat: Vec<f32>,
    /// Weight of each cell as a negative (0 inside ignore regions).
    negative_weight: Vec<f32>,
    /// `(cell, box weight, log width, log height)` of every lesion centre.
    centres: Vec<(i64, f32, f32, f32)>,
}

fn grid_targets(t: &ImageTargets, rows: i64, cols: i64) -> GridTargets {
    let cells = (rows * cols) as usize;
    let mut g = GridTargets {
        heat: vec![0.0; cells],
        negative_weight: vec![1.0; cells],
        centres: Vec::new(),
    };
    let centre_of = |r: i64, c: i64| {
        (
            (c as f32 + 0.5) * STRIDE as f32,
            (r as f32 + 0.5) * STRIDE as f32,
        )
    };
    for (b, &w) in t.boxes.iter().zip(&t.box_weights) {
        let (cx, cy) = ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
        let (col, row) = (
            ((cx / STRIDE as f32) as i64).clamp(0, cols - 1),
            ((cy / STRIDE as f32) as i64).clamp(0, rows - 1),
        );
        let sigma = ((b.width().min(b.height())) / STRIDE as f32 / 3.0).max(0.5);
        for r in 0..rows {
            for c in 0..cols {
                let d2 = ((r - row).pow(2) + (c - col).pow(2)) as f32;
                let k = (r * cols + c) as usize;
                g.heat[k] = g.heat[k].max((-d2 / (2.0 * sigma * sigma)).exp());
            }
        }
        g.centres.push((
            row * cols + col,
            w,
            (b.width() / STRIDE as f32).max(1e-3).ln(),
            (b.height() / STRIDE as f32).max(1e-3).ln(),
        ));
    }
    for ignore in &t.ignore {
        for r in 0..rows {
            for c in 0..cols {
                let (x, y) = centre_of(r, c);
                if x >= ignore.x1 && x <= ignore.x2 && y >= ignore.y1 && y <= ignore.y2 {
                    g.negative_weight[(r * cols + c) as usize] = 0.0;
                }
            }
        }
    }
    g
}

impl HeatmapDetector {
    /// Heat logits `[N, cells]` and log sizes `[N, 2, cells]`, with the grid.
    fn forward(&self, images: &Tensor) -> (Tensor, Tensor, i64, i64) {
        let f = self.body.forward(images);
        let (n, _, rows, cols) = f.size4().expect("[N, C, H, W] features");
        let heat = f.apply(&self.heat).view([n, rows * cols]);
        let size = f.apply(&self.size).view([n, 2, rows * cols]);
        (heat, size, rows, cols)
    }
}

impl Detector for HeatmapDetector {
    fn loss(&self, images: &Tensor, targets: &[ImageTargets], _train: bool) -> LossTerms {
        let (heat, size, rows, cols) = self.forward(images);
        let device = images.device();
        let grids: Vec<GridTargets> = targets
            .iter()
            .map(|t| grid_targets(t, rows, cols))
            .collect();
        let flat = |f: &dyn Fn(&GridTargets) -> Vec<f32>| {
            let v: Vec<f32> = grids.iter().flat_map(f).collect();
            Tensor::from_slice(&v)
                .view([grids.len() as i64, -1])
                .to(device)
        };
        let y = flat(&|g| g.heat.clone());
        let negative_weight = flat(&|g| g.negative_weight.clone());
        let mut peak = vec![0f32; (grids.len() as i64 * rows * cols) as usize];
        let mut peak_weight = peak.clone();
        let (mut index, mut weight, mut log_size) = (Vec::new(), Vec::new(), Vec::new());
        for (i, g) in grids.iter().enumerate() {
            let offset = i as i64 * rows * cols;
            for &(cell, w, lw, lh) in &g.centres {
                peak[(offset + cell) as usize] = 1.0;
                peak_weight[(offset + cell) as usize] = w;
                index.push(i as i64 * 2 * rows * cols + cell);
                index.push(i as i64 * 2 * rows * cols + rows * cols + cell);
                weight.extend([w, w]);
                log_size.extend([lw, lh]);
            }
        }
        let peak = Tensor::from_slice(&peak).view_as(&y).to(device);
        let peak_weight = Tensor::from_slice(&peak_weight).view_as(&y).to(device);
        let p = heat.sigmoid().clamp(1e-4, 1.0 - 1e-4);
        let not_p: Tensor = 1.0 - &p;
        let not_y: Tensor = 1.0 - &y;
        let not_peak: Tensor = 1.0 - &peak;
        let positive = -not_p.square() * p.log() * &peak_weight;
        let negative =
            -not_y.pow_tensor_scalar(4.0) * p.square() * not_p.log() * negative_weight * not_peak;
        let centres = grids.iter().map(|g| g.centres.len()).sum::<usize>() as f64;
        let norm = centres.max(1.0);
        let heat_loss = (positive + negative).sum(Kind::Float) / norm;
        let size_loss = if index.is_empty() {
            size.sum(Kind::Float) * 0.0
        } else {
            let picked = size
                .view([-1])
                .index_select(0, &Tensor::from_slice(&index).to(device));
            let target = Tensor::from_slice(&log_size).to(device);
            let w = Tensor::from_slice(&weight).to(device);
            ((picked - target).abs() * w).sum(Kind::Float) / norm
        };
        LossTerms {
            total: &heat_loss + &size_loss * 0.1,
            parts: vec![("heatmap", heat_loss), ("size", size_loss)],
            normaliser: centres,
        }
    }

    fn predict(&self, images: &Tensor) -> Vec<Vec<Detection>> {
        let (_, _, h, w) = images.size4().expect("[N, S, H, W] images");
        let (heat, size, rows, cols) = tch::no_grad(|| self.forward(images));
        let n = heat.size()[0];
        let p = heat.sigmoid().view([n, 1, rows, cols]);
        let local_max = p.max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false);
        let peaks = (p.eq_tensor(&local_max).to_kind(Kind::Float) * &p).view([n, -1]);
        let k = MAX_DETECTIONS.min(rows * cols);
        let (scores, cells) = peaks.topk(k, 1, true, true);
        (0..n)
            .map(|i| {
                let scores = Vec::<f32>::try_from(scores.get(i)).expect("scores");
                let cells = Vec::<i64>::try_from(cells.get(i)).expect("cells");
                let sizes = Vec::<f32>::try_from(size.get(i).exp().flatten(0, -1)).expect("sizes");
                scores
                    .iter()
                    .zip(&cells)
                    .map(|(&score, &cell)| {
                        let (r, c) = (cell / cols, cell % cols);
                        let bw = sizes[cell as usize] * STRIDE as f32;
                        let bh = sizes[(rows * cols + cell) as usize] * STRIDE as f32;
                        let (cx, cy) = (
                            (c as f32 + 0.5) * STRIDE as f32,
                            (r as f32 + 0.5) * STRIDE as f32,
                        );
                        Detection {
                            bbox: Box2::new(
                                cx - bw / 2.0,
                                cy - bh / 2.0,
                                cx + bw / 2.0,
                                cy + bh / 2.0,
                            )
                            .clip(w as f32, h as f32),
                            score,
                        }
                    })
                    .filter(|d| d.bbox.is_valid())
                    .collect()
            })
            .collect()
    }
}
