//! Arithmetic in CLIP's embedding space, the part of DALL·E 2 (Ramesh et al. 2022) that makes its
//! "CLIP latent" features: interpolation between two image embeddings (§3.2, Fig. 4), text diffs
//! (§3.3, Fig. 5) and the prior's best-of-2 (§2.2). Host-side `f32` vectors, computed in `f64`.
//!
//! The paper's CLIP embeddings are unit vectors. Checkpoints differ (Karlo's image tower output is not
//! normalised, unclip-emoji's is), so every rotation here acts on *directions* and carries the
//! length separately: `slerp` interpolates the length linearly, a text diff keeps the image
//! embedding's length. For unit vectors both reduce to the paper's formulas.

use crate::error::{Error, Result};

/// Angles below this (radians) are treated as "the same direction": slerp falls back to lerp.
const PARALLEL: f64 = 1e-6;

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn check_pair(what: &str, a: &[f32], b: &[f32]) -> Result<()> {
    if a.len() != b.len() {
        return Err(Error::Settings(format!(
            "{what} needs two embeddings of one size, got {} and {} values: make both with the same model",
            a.len(),
            b.len()
        )));
    }
    for v in [a, b] {
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::Settings(format!("{what} got an embedding with NaN or infinite values")));
        }
        if norm(v) == 0.0 {
            return Err(Error::Settings(format!(
                "{what} got an all-zero embedding, which has no direction: an untrained prior (clip_std = 0) makes those, so start from an image or use a trained model"
            )));
        }
    }
    Ok(())
}

/// v / ‖v‖₂.
pub fn normalize(v: &[f32]) -> Result<Vec<f32>> {
    check_pair("normalising", v, v)?;
    let n = norm(v);
    Ok(v.iter().map(|&x| (x as f64 / n) as f32).collect())
}

/// cos ∠(a, b) = a·b / (‖a‖‖b‖).
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> Result<f32> {
    check_pair("a cosine similarity", a, b)?;
    Ok((dot(a, b) / (norm(a) * norm(b))).clamp(-1.0, 1.0) as f32)
}

/// Spherical interpolation at `theta` ∈ [0, 1] between the directions of `a` and `b`, with the
/// length interpolated linearly:
///
/// `slerp(a, b, θ) = ((1−θ)‖a‖ + θ‖b‖) · (sin((1−θ)Ω)·â + sin(θΩ)·b̂) / sin Ω`, `Ω = ∠(a, b)`.
///
/// θ = 0 and θ = 1 return `a` and `b` exactly (so the ends of an interpolation decode to the very
/// images of the end embeddings). Directions closer than 1e-6 rad are interpolated linearly;
/// opposite directions have no unique great circle and are refused.
pub fn slerp(a: &[f32], b: &[f32], theta: f32) -> Result<Vec<f32>> {
    check_pair("slerp", a, b)?;
    if !(0.0..=1.0).contains(&theta) {
        return Err(Error::Settings(format!("slerp's θ must be between 0 and 1 (got {theta})")));
    }
    if theta == 0.0 {
        return Ok(a.to_vec());
    }
    if theta == 1.0 {
        return Ok(b.to_vec());
    }
    let (na, nb, t) = (norm(a), norm(b), theta as f64);
    let omega = (dot(a, b) / (na * nb)).clamp(-1.0, 1.0).acos();
    if std::f64::consts::PI - omega < PARALLEL {
        return Err(Error::Settings(
            "slerp between opposite directions is undefined (every great circle joins them): pick other endpoints"
                .into(),
        ));
    }
    let (wa, wb) = if omega < PARALLEL {
        (1.0 - t, t)
    } else {
        (((1.0 - t) * omega).sin() / omega.sin(), (t * omega).sin() / omega.sin())
    };
    let length = (1.0 - t) * na + t * nb;
    let dir: Vec<f64> = a.iter().zip(b).map(|(&x, &y)| wa * x as f64 / na + wb * y as f64 / nb).collect();
    // lerp'd directions are shorter than 1; renormalising costs nothing when slerp already gave a unit
    let dn = dir.iter().map(|d| d * d).sum::<f64>().sqrt();
    Ok(dir.iter().map(|d| (d / dn * length) as f32).collect())
}

/// `n` evenly spaced values of θ from `from` to `to`, both included (n ≥ 2).
pub fn thetas(n: usize, from: f32, to: f32) -> Result<Vec<f32>> {
    if n < 2 {
        return Err(Error::Settings(format!("an interpolation needs at least 2 frames (got {n})")));
    }
    Ok((0..n).map(|i| if i + 1 == n { to } else { from + (to - from) * i as f32 / (n - 1) as f32 }).collect())
}

/// The embeddings of an `n`-frame interpolation from `a` to `b` (frame 0 = `a`, frame n−1 = `b`).
pub fn interpolation(a: &[f32], b: &[f32], n: usize) -> Result<Vec<Vec<f32>>> {
    thetas(n, 0.0, 1.0)?.into_iter().map(|t| slerp(a, b, t)).collect()
}

/// The text-diff direction z_d = normalise(z_t(target) − z_t(current)) (paper §3.3).
pub fn text_diff_direction(current_text: &[f32], target_text: &[f32]) -> Result<Vec<f32>> {
    check_pair("a text diff", current_text, target_text)?;
    let d: Vec<f32> = target_text.iter().zip(current_text).map(|(t, c)| t - c).collect();
    if norm(&d) == 0.0 {
        return Err(Error::Settings(
            "the two descriptions give the same text embedding, so there is no difference to apply: change one of them"
                .into(),
        ));
    }
    normalize(&d)
}

/// The image embedding `z_i` rotated towards the text diff `z_d` by θ: slerp(z_i, ‖z_i‖·z_d, θ)
/// (the paper's slerp(z_i, z_d, θ) for unit vectors; the length of `z_i` is kept).
pub fn apply_text_diff(image: &[f32], direction: &[f32], theta: f32) -> Result<Vec<f32>> {
    check_pair("a text diff", image, direction)?;
    let scale = norm(image) / norm(direction);
    let target: Vec<f32> = direction.iter().map(|&d| (d as f64 * scale) as f32).collect();
    slerp(image, &target, theta)
}

/// The embeddings of an `n`-frame text diff, θ from 0 (the image itself) to `max_theta` (the paper
/// shows 0 … 0.5).
pub fn text_diff_frames(
    image: &[f32],
    current_text: &[f32],
    target_text: &[f32],
    n: usize,
    max_theta: f32,
) -> Result<Vec<Vec<f32>>> {
    if image.len() != current_text.len() {
        return Err(Error::Settings(format!(
            "a text diff needs text and image embeddings of one size, this model makes {}-d text and {}-d image embeddings",
            current_text.len(),
            image.len()
        )));
    }
    let d = text_diff_direction(current_text, target_text)?;
    thetas(n, 0.0, max_theta)?.into_iter().map(|t| apply_text_diff(image, &d, t)).collect()
}

/// The prior's best-of-N (paper §2.2: "sample two z_i and keep the one with the higher dot product
/// with z_t"): the index of the candidate most similar to the text embedding. Similarity is the
/// cosine, i.e. the dot product of the unit vectors the paper uses; an all-zero candidate (a prior
/// whose clip_std is zero, like diffusers' untrained test prior) has none and scores 0. Ties keep the
/// first.
pub fn best_of(candidates: &[Vec<f32>], text: &[f32]) -> Result<usize> {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, c) in candidates.iter().enumerate() {
        if c.len() != text.len() {
            return Err(Error::Model(format!(
                "best-of-N compares image embeddings with the text embedding, but this model makes {}-d image and {}-d text embeddings",
                c.len(),
                text.len()
            )));
        }
        if c.iter().chain(text).any(|x| !x.is_finite()) {
            return Err(Error::Model("the prior or the text encoder produced NaN or infinite values".into()));
        }
        let lengths = norm(c) * norm(text);
        let s = if lengths > 0.0 { dot(c, text) / lengths } else { 0.0 };
        if s > best.1 {
            best = (i, s);
        }
    }
    Ok(best.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn slerp_of_unit_vectors_is_the_textbook_formula() {
        let (a, b) = ([1.0f32, 0.0, 0.0], [0.0f32, 1.0, 0.0]);
        for theta in [0.1f32, 0.25, 0.5, 0.9] {
            let angle = theta as f64 * std::f64::consts::FRAC_PI_2;
            let want = [angle.cos() as f32, angle.sin() as f32, 0.0];
            assert!(close(&slerp(&a, &b, theta).unwrap(), &want, 1e-6), "θ = {theta}");
        }
    }

    #[test]
    fn slerp_keeps_the_angle_proportional_and_the_length_linear() {
        let a = [3.0f32, -1.0, 2.0, 0.5];
        let b = [-0.5f32, 4.0, 1.0, -2.0];
        let total = cosine_similarity(&a, &b).unwrap().acos();
        let (na, nb) = (norm(&a), norm(&b));
        for theta in [0.2f32, 0.5, 0.7] {
            let m = slerp(&a, &b, theta).unwrap();
            let from_a = cosine_similarity(&a, &m).unwrap().acos();
            let to_b = cosine_similarity(&m, &b).unwrap().acos();
            assert!((from_a - theta * total).abs() < 1e-4, "θ = {theta}: {from_a} of {total}");
            assert!((from_a + to_b - total).abs() < 1e-4, "m lies on the great circle between a and b");
            let want = (1.0 - theta as f64) * na + theta as f64 * nb;
            assert!((norm(&m) - want).abs() < 1e-5, "length {} vs {want}", norm(&m));
        }
    }

    #[test]
    fn slerp_endpoints_are_exact_and_bad_input_is_refused() {
        let a = [0.123f32, -4.5, 6.75];
        let b = [1.0f32, 2.0, 3.0];
        assert_eq!(slerp(&a, &b, 0.0).unwrap(), a);
        assert_eq!(slerp(&a, &b, 1.0).unwrap(), b);
        assert!(slerp(&a, &[1.0, 2.0], 0.5).unwrap_err().to_string().contains("3 and 2 values"));
        assert!(slerp(&a, &[0.0; 3], 0.5).unwrap_err().to_string().contains("all-zero"));
        assert!(slerp(&a, &b, 1.5).is_err());
        assert!(slerp(&a, &[f32::NAN, 0.0, 0.0], 0.5).is_err());
        let opposite: Vec<f32> = a.iter().map(|x| -2.0 * x).collect();
        assert!(slerp(&a, &opposite, 0.5).unwrap_err().to_string().contains("opposite"));
        // (almost) the same direction: lerp, no division by sin Ω ≈ 0
        let same: Vec<f32> = a.iter().map(|x| 2.0 * x).collect();
        let mid = slerp(&a, &same, 0.5).unwrap();
        assert!(close(&mid, &a.map(|x| 1.5 * x), 1e-5), "{mid:?}");
    }

    #[test]
    fn interpolation_frames_run_from_a_to_b() {
        let a = [1.0f32, 0.0];
        let b = [0.0f32, 2.0];
        let frames = interpolation(&a, &b, 5).unwrap();
        assert_eq!(frames.len(), 5);
        assert_eq!(frames[0], a);
        assert_eq!(frames[4], b);
        let angles: Vec<f32> = frames.iter().map(|f| f[1].atan2(f[0])).collect();
        for w in angles.windows(2) {
            assert!((w[1] - w[0] - std::f32::consts::FRAC_PI_8).abs() < 1e-6, "{angles:?}");
        }
        assert!(interpolation(&a, &b, 1).is_err());
        assert_eq!(thetas(3, 0.0, 0.5).unwrap(), [0.0, 0.25, 0.5]);
    }

    #[test]
    fn text_diff_is_the_normalised_difference_rotated_in_at_theta() {
        let cat = [1.0f32, 0.0, 0.0];
        let dog = [0.0f32, 1.0, 0.0];
        let d = text_diff_direction(&cat, &dog).unwrap();
        let s = std::f32::consts::FRAC_1_SQRT_2;
        assert!(close(&d, &[-s, s, 0.0], 1e-7));

        let image = [0.0f32, 0.0, 5.0]; // orthogonal to d: θ rotates it by θ·90°
        let frames = text_diff_frames(&image, &cat, &dog, 3, 0.5).unwrap();
        assert_eq!(frames[0], image);
        for (f, theta) in frames.iter().zip([0.0f32, 0.25, 0.5]) {
            assert!((norm(f) - 5.0).abs() < 1e-5, "the image embedding keeps its length");
            let rotated = cosine_similarity(f, &image).unwrap().acos();
            assert!((rotated - theta * std::f32::consts::FRAC_PI_2).abs() < 1e-5);
            assert!(cosine_similarity(f, &d).unwrap() >= -1e-6, "it moves towards the target");
        }
        assert!(text_diff_direction(&cat, &cat).unwrap_err().to_string().contains("same text embedding"));
        assert!(text_diff_frames(&[1.0, 2.0], &cat, &dog, 3, 0.5).is_err());
    }

    #[test]
    fn best_of_keeps_the_candidate_closest_to_the_text() {
        let text = [1.0f32, 1.0, 0.0];
        let far_but_long = vec![10.0f32, 2.0, 8.0]; // the larger raw dot product (12 vs 2) is not what counts
        let near = vec![0.9f32, 1.1, 0.1];
        assert_eq!(best_of(&[far_but_long.clone(), near.clone()], &text).unwrap(), 1);
        assert_eq!(best_of(&[near, far_but_long], &text).unwrap(), 0);
        assert!(best_of(&[vec![1.0, 2.0]], &text).unwrap_err().to_string().contains("2-d image and 3-d text"));
        assert_eq!(best_of(&[vec![0.0; 3], vec![-1.0, -1.0, 0.0]], &text).unwrap(), 0, "no direction scores 0");
        assert!(best_of(&[vec![f32::NAN; 3]], &text).is_err());
    }
}
