//! The detector's loss terms: sigmoid focal loss with per-location weights,
//! GIoU loss of the distance boxes, and binary cross-entropy of the
//! localisation quality, each normalised by the number of positives.

use tch::{Device, Kind, Reduction, Tensor};

use crate::config::{LossConfig, QualityKind};
use crate::head::HeadOutput;
use crate::targets::AssignedTargets;

/// The loss of a batch as any detector reports it: the total the optimiser
/// minimises and its named parts (scalar tensors), for logs.
#[derive(Debug)]
pub struct LossTerms {
    pub total: Tensor,
    /// `(name, term)`; a name is logged as `loss_<name>`.
    pub parts: Vec<(&'static str, Tensor)>,
    /// What the batch's sums were divided by before clamping to at least 1
    /// (FCOS: its positive locations). Ranks that each hold part of a batch
    /// weigh their losses by it, so that N ranks of B images train as one
    /// batch of N x B.
    pub normaliser: f64,
}

impl LossTerms {
    /// The parts as numbers, after the total.
    pub fn values(&self) -> LossValues {
        LossValues {
            total: self.total.double_value(&[]),
            parts: self
                .parts
                .iter()
                .map(|(name, t)| (*name, t.double_value(&[])))
                .collect(),
        }
    }

    /// The part called `name`.
    pub fn part(&self, name: &str) -> Option<&Tensor> {
        self.parts.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
    }
}

/// [`LossTerms`] as numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct LossValues {
    pub total: f64,
    pub parts: Vec<(&'static str, f64)>,
}

impl LossValues {
    /// The total, then every part.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        std::iter::once(self.total).chain(self.parts.iter().map(|(_, v)| *v))
    }

    pub fn is_finite(&self) -> bool {
        self.iter().all(f64::is_finite)
    }
}

/// The FCOS loss of a batch: the weighted total and its parts.
#[derive(Debug)]
pub struct FcosLoss {
    pub total: Tensor,
    pub cls: Tensor,
    pub box_reg: Tensor,
    pub quality: Tensor,
    /// Positive locations in the batch (the normaliser, at least 1).
    pub num_positives: i64,
}

impl From<FcosLoss> for LossTerms {
    fn from(l: FcosLoss) -> Self {
        Self {
            total: l.total,
            parts: vec![("cls", l.cls), ("box", l.box_reg), ("quality", l.quality)],
            normaliser: l.num_positives as f64,
        }
    }
}

/// Sum over elements of `w * alpha_t * (1 - p_t)^gamma * BCE(logit, target)`.
pub fn sigmoid_focal_loss(
    logits: &Tensor,
    targets: &Tensor,
    weights: &Tensor,
    alpha: f64,
    gamma: f64,
) -> Tensor {
    let p = logits.sigmoid();
    let ce =
        logits.binary_cross_entropy_with_logits::<Tensor>(targets, None, None, Reduction::None);
    let p_t: Tensor = &p * targets + (1.0 - &p) * (1.0 - targets);
    let alpha_t: Tensor = targets * alpha + (1f64 - targets) * (1.0 - alpha);
    let modulator: Tensor = (1f64 - p_t).pow_tensor_scalar(gamma);
    let weighted: Tensor = ce * modulator * alpha_t * weights;
    weighted.sum(Kind::Float)
}

/// Intersection, union and enclosing area of boxes given as distances
/// `[l, t, r, b]` from the same point (`[P, 4]` each).
fn ltrb_areas(pred: &Tensor, target: &Tensor) -> (Tensor, Tensor, Tensor) {
    let area = |d: &Tensor| (d.select(1, 0) + d.select(1, 2)) * (d.select(1, 1) + d.select(1, 3));
    let lo = pred.minimum(target);
    let hi = pred.maximum(target);
    let inter = (lo.select(1, 0) + lo.select(1, 2)).clamp_min(0.0)
        * (lo.select(1, 1) + lo.select(1, 3)).clamp_min(0.0);
    let union = area(pred) + area(target) - &inter;
    let enclosing = (hi.select(1, 0) + hi.select(1, 2)) * (hi.select(1, 1) + hi.select(1, 3));
    (inter, union, enclosing)
}

/// IoU of distance boxes from the same points, `[P]`.
pub fn ltrb_iou(pred: &Tensor, target: &Tensor) -> Tensor {
    let (inter, union, _) = ltrb_areas(pred, target);
    inter / union.clamp_min(1e-6)
}

/// `1 - GIoU` per pair of distance boxes from the same points, `[P]`.
pub fn giou_loss(pred: &Tensor, target: &Tensor) -> Tensor {
    let (inter, union, enclosing) = ltrb_areas(pred, target);
    let union = union.clamp_min(1e-6);
    let iou = &inter / &union;
    let giou = iou - (&enclosing - &union) / enclosing.clamp_min(1e-6);
    1.0 - giou
}

/// The targets of a batch as tensors on `device`.
#[derive(Debug)]
pub struct BatchTargets {
    /// `[N, L]` 1 at positives.
    pub labels: Tensor,
    /// `[N, L]` classification weights.
    pub cls_weight: Tensor,
    /// Flat indices (into `N * L`) of the positives, `[P]`.
    pub positive: Tensor,
    /// `[P, 4]` target distances of the positives.
    pub ltrb: Tensor,
    /// `[P]` centerness targets.
    pub centerness: Tensor,
    /// `[P]` box weights of the positives.
    pub weight: Tensor,
}

impl BatchTargets {
    pub fn new(assigned: &[AssignedTargets], device: Device) -> Self {
        let n = assigned.len() as i64;
        let mut labels = Vec::new();
        let mut cls_weight = Vec::new();
        let (mut positive, mut ltrb, mut centerness, mut weight) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for a in assigned {
            for (k, b) in a.box_index.iter().enumerate() {
                labels.push(if b.is_some() { 1.0f32 } else { 0.0 });
                cls_weight.push(a.cls_weight[k]);
                if b.is_some() {
                    positive.push(labels.len() as i64 - 1);
                    ltrb.extend_from_slice(&a.ltrb[k]);
                    centerness.push(a.centerness[k]);
                    weight.push(a.cls_weight[k]);
                }
            }
        }
        // Built on the CPU; on a GPU copied from pinned memory without
        // blocking, so the host does not wait for queued kernels.
        let to = |t: Tensor| match device {
            Device::Cpu => t,
            // `_pin_memory`: `pin_memory(device)` warns that its argument
            // is deprecated, on every call.
            _ => t
                .internal_pin_memory(device)
                .to_device_(device, t.kind(), true, false),
        };
        let f = |v: &[f32]| to(Tensor::from_slice(v));
        Self {
            labels: f(&labels).view([n, -1]),
            cls_weight: f(&cls_weight).view([n, -1]),
            positive: to(Tensor::from_slice(&positive)),
            ltrb: f(&ltrb).view([-1, 4]),
            centerness: f(&centerness),
            weight: f(&weight),
        }
    }

    pub fn num_positives(&self) -> i64 {
        self.positive.size()[0]
    }
}

/// The detector loss of head outputs against batch targets.
pub fn detection_loss(
    out: &HeadOutput,
    t: &BatchTargets,
    cfg: &LossConfig,
    quality: QualityKind,
) -> FcosLoss {
    let num_positives = t.num_positives();
    let norm = num_positives.max(1) as f64;
    let cls = sigmoid_focal_loss(
        &out.cls_logits.to_kind(Kind::Float),
        &t.labels,
        &t.cls_weight,
        cfg.focal_alpha,
        cfg.focal_gamma,
    ) / norm;
    let (box_reg, quality_loss) = if num_positives == 0 {
        // Keep the graph connected so backward reaches every parameter.
        let zero = out.ltrb.sum(Kind::Float) * 0.0 + out.quality_logits.sum(Kind::Float) * 0.0;
        (zero.shallow_clone(), zero)
    } else {
        let pred = out
            .ltrb
            .to_kind(Kind::Float)
            .view([-1, 4])
            .index_select(0, &t.positive);
        let q_logits = out
            .quality_logits
            .to_kind(Kind::Float)
            .view([-1])
            .index_select(0, &t.positive);
        let box_reg = (giou_loss(&pred, &t.ltrb) * &t.weight).sum(Kind::Float) / norm;
        let q_target = match quality {
            QualityKind::Centerness => t.centerness.shallow_clone(),
            QualityKind::Iou => ltrb_iou(&pred, &t.ltrb).detach(),
        };
        let q = q_logits.binary_cross_entropy_with_logits::<Tensor>(
            &q_target,
            Some(t.weight.shallow_clone()),
            None,
            Reduction::Sum,
        ) / norm;
        (box_reg, q)
    };
    let total =
        &cls * cfg.cls_weight + &box_reg * cfg.box_weight + &quality_loss * cfg.quality_weight;
    FcosLoss {
        total,
        cls,
        box_reg,
        quality: quality_loss,
        num_positives,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    fn close(a: &Tensor, b: f64) {
        let a = a.double_value(&[]);
        assert!((a - b).abs() < 1e-5 * b.abs().max(1.0), "{a} != {b}");
    }

    #[test]
    fn focal_loss_matches_hand_computation() {
        // logit 0 (p = 0.5), target 1: BCE = ln 2, (1 - 0.5)^2 = 0.25, alpha 0.25
        // logit ln 3 (p = 0.75), target 0: BCE = ln 4, p_t = 0.25 -> 0.75^2, 1 - alpha = 0.75
        // third element has weight 0 (ignored).
        let logits = t(&[0.0, 3f32.ln(), 5.0]);
        let targets = t(&[1.0, 0.0, 0.0]);
        let w = t(&[1.0, 2.0, 0.0]);
        let want = 2f64.ln() * 0.25 * 0.25 + 2.0 * 4f64.ln() * 0.5625 * 0.75;
        close(&sigmoid_focal_loss(&logits, &targets, &w, 0.25, 2.0), want);
        // gamma 0 and alpha 0.5 is half the weighted BCE
        let bce = 2f64.ln() + 2.0 * 4f64.ln();
        close(
            &sigmoid_focal_loss(&logits, &targets, &w, 0.5, 0.0),
            0.5 * bce,
        );
    }

    #[test]
    fn giou_and_iou_of_distance_boxes_match_hand_computation() {
        // same point; pred [-1, -1, 1, 1] (area 4), target [0, -1, 2, 1]... as
        // distances pred (1, 1, 1, 1), target (0, 1, 2, 1): inter 1*2 = 2,
        // union 4 + 4 - 2 = 6, enclosing (1 + 2) * 2 = 6 -> GIoU = IoU = 1/3.
        // second pair: pred (1, 1, 1, 1), target (1, 1, 3, 3): inter 4,
        // union 16, enclosing 16 -> IoU 0.25.
        // third: disjoint-ish pred (1, 1, 1, 1) vs target (-2, 1, 4, 1)
        // ([2, 4] in x): inter 0, union 8, enclosing [-1, 4] x 2 = 10,
        // GIoU = 0 - 2/10.
        let pred = t(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]).view([3, 4]);
        let target = t(&[0.0, 1.0, 2.0, 1.0, 1.0, 1.0, 3.0, 3.0, -2.0, 1.0, 4.0, 1.0]).view([3, 4]);
        let iou = Vec::<f32>::try_from(ltrb_iou(&pred, &target)).unwrap();
        let loss = Vec::<f32>::try_from(giou_loss(&pred, &target)).unwrap();
        let want_iou = [1.0 / 3.0, 0.25, 0.0];
        let want_loss = [2.0 / 3.0, 0.75, 1.2];
        for i in 0..3 {
            assert!((iou[i] - want_iou[i]).abs() < 1e-6, "{iou:?}");
            assert!((loss[i] - want_loss[i]).abs() < 1e-6, "{loss:?}");
        }
    }
}
