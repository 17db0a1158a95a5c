//! The teacher as an exponential moving average of the student.

use tch::nn::VarStore;

/// `teacher = momentum * teacher + (1 - momentum) * student` for every
/// floating-point variable of the teacher; other variables are copied.
/// The two stores must hold the same names and shapes.
pub fn ema_update(teacher: &VarStore, student: &VarStore, momentum: f64) -> Result<(), String> {
    let students = student.variables();
    tch::no_grad(|| {
        for (name, mut t) in teacher.variables() {
            let s = students
                .get(&name)
                .ok_or_else(|| format!("the student has no variable `{name}`"))?;
            if s.size() != t.size() {
                return Err(format!(
                    "`{name}`: teacher {:?} vs student {:?}",
                    t.size(),
                    s.size()
                ));
            }
            if t.is_floating_point() {
                let _ = t.g_mul_scalar_(momentum).g_add_(&(s * (1.0 - momentum)));
            } else {
                t.copy_(s);
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn ema_moves_the_teacher_towards_the_student() {
        let teacher = VarStore::new(Device::Cpu);
        let student = VarStore::new(Device::Cpu);
        let mut t = teacher.root().zeros("w", &[2]);
        let mut s = student.root().zeros("w", &[2]);
        tch::no_grad(|| {
            t.copy_(&Tensor::from_slice(&[1.0f32, 2.0]));
            s.copy_(&Tensor::from_slice(&[3.0f32, -2.0]));
        });
        ema_update(&teacher, &student, 0.9).unwrap();
        let got: Vec<f32> = Vec::try_from(&t).unwrap();
        // 0.9 * 1 + 0.1 * 3 = 1.2; 0.9 * 2 + 0.1 * -2 = 1.6
        assert!(
            (got[0] - 1.2).abs() < 1e-6 && (got[1] - 1.6).abs() < 1e-6,
            "{got:?}"
        );
        assert_eq!(t.kind(), Kind::Float);
    }

    #[test]
    fn mismatched_stores_are_errors() {
        let teacher = VarStore::new(Device::Cpu);
        let student = VarStore::new(Device::Cpu);
        let _t = teacher.root().zeros("w", &[2]);
        let _s = student.root().zeros("other", &[2]);
        assert!(
            ema_update(&teacher, &student, 0.99)
                .unwrap_err()
                .contains("`w`")
        );
    }
}
