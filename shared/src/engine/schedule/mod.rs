//! Schedules (SPEC 14): who is on call, rendered without I/O. One small
//! calculator per concern, GoAlert style: [`rotation`] (handoffs of a
//! layer, counted in the schedule's time zone), [`restriction`] (the local
//! weekdays and hours a layer is on), [`overrides`]; [`walk`] composes them,
//! jumping from one change point to the next (never minute by minute), so
//! 90 days of shifts cost a step per handoff or window edge.
//!
//! Precedence: an override wins over every layer; among layers, the later
//! one wins wherever it has someone. Before its `start` a layer has nobody.

pub mod overrides;
pub mod restriction;
pub mod rotation;
pub mod walk;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::ids::check_id;
use crate::rules::silence::weekly_window;

pub use walk::{OnCall, ShiftItem, Source};

pub const MAX_LAYERS: usize = 10;
pub const MAX_LAYER_MEMBERS: usize = 50;
pub const MAX_SHIFT_LENGTH: u32 = 365;
/// Not in SPEC 14: enough for every weekday twice over, plus spares.
pub const MAX_RESTRICTIONS: usize = 20;
/// Not in SPEC 14: a year of weekly swaps, bounded so a render stays cheap.
pub const MAX_OVERRIDES: usize = 100;
pub const NAME_MAX_CHARS: usize = 100;
/// The longest `shifts` range (and the iCalendar feed's span).
pub const MAX_RANGE_SECS: i64 = 90 * 86_400;
/// 9999-12-31T23:59:59Z: the last second a schedule may name.
pub const LATEST_SECOND: i64 = 253_402_300_799;

/// A schedule as the API takes and shows it (SPEC 14).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub name: String,
    pub time_zone: String,
    pub layers: Vec<Layer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub name: String,
    /// Rotation order.
    pub member_ids: Vec<String>,
    /// Unix seconds: the first handoff.
    pub start: i64,
    pub shift: Shift,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restrictions: Vec<Restriction>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    pub unit: ShiftUnit,
    pub length: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShiftUnit {
    Hours,
    Days,
    Weeks,
}

/// On these local weekdays (1 = Monday … 7 = Sunday) from `from` to `to`
/// (HH:MM; a `to` not after `from` ends the next day).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restriction {
    pub weekdays: Vec<u8>,
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub member_id: String,
    /// Unix seconds, inclusive.
    pub from: i64,
    /// Unix seconds, exclusive.
    pub to: i64,
}

/// A checked schedule, ready to answer who is on call.
#[derive(Clone, Debug)]
pub struct CompiledSchedule {
    layers: Vec<CompiledLayer>,
    overrides: overrides::Overrides,
}

#[derive(Clone, Debug)]
struct CompiledLayer {
    member_ids: Vec<String>,
    rotation: rotation::Rotation,
    restrictions: restriction::Restrictions,
}

fn check_name(at: &str, name: &str) -> ApiResult<()> {
    let chars = name.trim().chars().count();
    if chars == 0 || chars > NAME_MAX_CHARS {
        return Err(ApiError::invalid(format!(
            "{at}: must be 1 to {NAME_MAX_CHARS} characters"
        )));
    }
    Ok(())
}

fn check_second(at: &str, second: i64) -> ApiResult<()> {
    if (0..=LATEST_SECOND).contains(&second) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{at}: must be unix seconds from 0 to {LATEST_SECOND}"
        )))
    }
}

/// The IANA zone, or an error naming `at`.
pub fn time_zone(at: &str, name: &str) -> ApiResult<TimeZone> {
    TimeZone::get(name).map_err(|_| {
        ApiError::invalid(format!(
            "{at}: not an IANA time zone name (e.g. Europe/Berlin, UTC)"
        ))
    })
}

impl Schedule {
    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> ApiResult<()> {
        self.compile().map(|_| ())
    }

    /// Member ids named anywhere, each with the place that names it (for
    /// "still used by" messages when a member is deleted).
    pub fn member_places(&self) -> Vec<(String, &str)> {
        let mut places = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            for (j, id) in layer.member_ids.iter().enumerate() {
                places.push((format!("layers[{i}].member_ids[{j}]"), id.as_str()));
            }
        }
        for (i, o) in self.overrides.iter().enumerate() {
            places.push((format!("overrides[{i}].member_id"), o.member_id.as_str()));
        }
        places
    }

    pub fn compile(&self) -> ApiResult<CompiledSchedule> {
        check_name("name", &self.name)?;
        let tz = time_zone("time_zone", &self.time_zone)?;
        if self.layers.is_empty() || self.layers.len() > MAX_LAYERS {
            return Err(ApiError::invalid(format!(
                "layers: 1 to {MAX_LAYERS} layers"
            )));
        }
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| layer.compile(&tz, &format!("layers[{i}]")))
            .collect::<ApiResult<Vec<_>>>()?;
        if self.overrides.len() > MAX_OVERRIDES {
            return Err(ApiError::invalid(format!(
                "overrides: at most {MAX_OVERRIDES} overrides"
            )));
        }
        for (i, o) in self.overrides.iter().enumerate() {
            let at = format!("overrides[{i}]");
            check_id(&format!("{at}.member_id"), &o.member_id)?;
            check_second(&format!("{at}.from"), o.from)?;
            check_second(&format!("{at}.to"), o.to)?;
            if o.to <= o.from {
                return Err(ApiError::invalid(format!(
                    "{at}.to: must be after {at}.from"
                )));
            }
        }
        Ok(CompiledSchedule {
            layers,
            overrides: overrides::Overrides::new(&self.overrides),
        })
    }
}

impl Layer {
    fn compile(&self, tz: &TimeZone, at: &str) -> ApiResult<CompiledLayer> {
        check_name(&format!("{at}.name"), &self.name)?;
        if self.member_ids.is_empty() || self.member_ids.len() > MAX_LAYER_MEMBERS {
            return Err(ApiError::invalid(format!(
                "{at}.member_ids: 1 to {MAX_LAYER_MEMBERS} members"
            )));
        }
        for (j, id) in self.member_ids.iter().enumerate() {
            check_id(&format!("{at}.member_ids[{j}]"), id)?;
        }
        check_second(&format!("{at}.start"), self.start)?;
        if !(1..=MAX_SHIFT_LENGTH).contains(&self.shift.length) {
            return Err(ApiError::invalid(format!(
                "{at}.shift.length: must be 1 to {MAX_SHIFT_LENGTH}"
            )));
        }
        if self.restrictions.len() > MAX_RESTRICTIONS {
            return Err(ApiError::invalid(format!(
                "{at}.restrictions: at most {MAX_RESTRICTIONS} restrictions"
            )));
        }
        let mut windows = Vec::with_capacity(self.restrictions.len());
        for (k, r) in self.restrictions.iter().enumerate() {
            let place = format!("{at}.restrictions[{k}]");
            windows.push(weekly_window(
                &place,
                ["weekdays", "from", "to"],
                &r.weekdays,
                &r.from,
                &r.to,
            )?);
        }
        let rotation = rotation::Rotation::new(
            tz,
            self.member_ids.len(),
            self.start,
            self.shift.unit,
            self.shift.length,
        )
        .ok_or_else(|| ApiError::invalid(format!("{at}.start: not a representable time")))?;
        Ok(CompiledLayer {
            member_ids: self.member_ids.clone(),
            rotation,
            restrictions: restriction::Restrictions::new(tz, windows),
        })
    }
}

#[cfg(test)]
mod tests;
