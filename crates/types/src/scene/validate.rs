//! Field validators used with `#[serde(deserialize_with = ...)]`: a bad value fails while it is
//! parsed, so the error carries its line, column and field path.

use crate::Vec3;
use serde::de::Error;
use serde::{Deserialize, Deserializer};

pub fn finite<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "must be a finite number, got {v}"
        )))
    }
}

pub fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = finite(d)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(D::Error::custom(format!("must be > 0, got {v}")))
    }
}

pub fn non_negative<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = finite(d)?;
    if v >= 0.0 {
        Ok(v)
    } else {
        Err(D::Error::custom(format!("must be >= 0, got {v}")))
    }
}

pub fn optional_non_negative<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        None => Ok(None),
        Some(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
        Some(v) => Err(D::Error::custom(format!(
            "must be a finite number >= 0, got {v}"
        ))),
    }
}

pub fn probability<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = finite(d)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "must be a probability in [0, 1], got {v}"
        )))
    }
}

pub fn finite_vec3<'de, D: Deserializer<'de>>(d: D) -> Result<Vec3, D::Error> {
    let v = Vec3::deserialize(d)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "every component must be finite, got ({}, {}, {})",
            v.x, v.y, v.z
        )))
    }
}

pub fn positive_vec3<'de, D: Deserializer<'de>>(d: D) -> Result<Vec3, D::Error> {
    let v = finite_vec3(d)?;
    if v.x > 0.0 && v.y > 0.0 && v.z > 0.0 {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "every component must be > 0, got ({}, {}, {})",
            v.x, v.y, v.z
        )))
    }
}

pub fn optional_finite<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        None => Ok(None),
        Some(v) if v.is_finite() => Ok(Some(v)),
        Some(v) => Err(D::Error::custom(format!(
            "must be a finite number, got {v}"
        ))),
    }
}
