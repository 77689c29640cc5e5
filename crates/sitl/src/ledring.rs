//! The LED-ring deck as `ledring12.c` drives it: the colours of the 12 LEDs for the effect the
//! `ring.effect` parameter selects. Modelled: 0 black, 7 solid colour (`ring.solidRed/Green/
//! Blue`, fading in by 0.05 per worker tick), 13 the LED driver memory (RGB565 big-endian, as
//! cflib and the ZMQ LED server write it, back to RGB888 with the firmware's own formula). The
//! other effects are animations of attitude, battery or radio state and are not modelled: their
//! colours are unknown (None), never invented.

/// LEDs on the ring.
pub const RING_LEDS: usize = 12;
/// `ring.effect` values this model renders.
pub const EFFECT_BLACK: u8 = 0;
pub const EFFECT_SOLID: u8 = 7;
pub const EFFECT_MEMORY: u8 = 13;
/// The ring's worker runs every 40 ms (25 Hz).
pub const TICK_NS: u64 = 40_000_000;

/// The ring's state between worker ticks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LedRing {
    effect: Option<u8>,
    brightness: f32,
    colours: Option<[[u8; 3]; RING_LEDS]>,
}

/// `RGB565_TO_RGB888` of `ledring12.c`.
pub fn rgb888_of_rgb565_be(hi: u8, lo: u8) -> [u8; 3] {
    let r5 = u16::from(hi >> 3);
    let g6 = (u16::from(hi & 0x07) << 3) | u16::from(lo >> 5);
    let b5 = u16::from(lo & 0x1F);
    [
        ((r5 * 527 + 23) >> 6) as u8,
        ((g6 * 259 + 33) >> 6) as u8,
        ((b5 * 527 + 23) >> 6) as u8,
    ]
}

impl LedRing {
    /// One worker tick: `effect` and `solid` from the parameters, `memory` the LED driver memory.
    pub fn tick(&mut self, effect: u8, solid: [u8; 3], memory: &[u8; 2 * RING_LEDS]) {
        let reset = self.effect != Some(effect);
        self.effect = Some(effect);
        self.colours = match effect {
            EFFECT_BLACK => Some([[0; 3]; RING_LEDS]),
            EFFECT_SOLID => {
                if reset {
                    self.brightness = 0.0;
                }
                self.brightness = if self.brightness < 1.0 {
                    self.brightness + 0.05
                } else {
                    1.0
                };
                let c = solid.map(|v| (f32::from(v) * self.brightness) as u8);
                Some([c; RING_LEDS])
            }
            EFFECT_MEMORY => {
                let mut out = [[0; 3]; RING_LEDS];
                for (i, led) in out.iter_mut().enumerate() {
                    *led = rgb888_of_rgb565_be(memory[2 * i], memory[2 * i + 1]);
                }
                Some(out)
            }
            _ => None,
        };
    }

    /// The colours shown now (None: an effect this model does not render, or before the first
    /// tick).
    pub fn colours(&self) -> Option<[[u8; 3]; RING_LEDS]> {
        self.colours
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_effect_shows_what_cflib_wrote() {
        // cflib's RGB565 of red, green, blue and (10, 20, 30).
        let mut mem = [0u8; 24];
        mem[..8].copy_from_slice(&[0xF8, 0x00, 0x07, 0xE0, 0x00, 0x1F, 0x08, 0xA4]);
        let mut ring = LedRing::default();
        ring.tick(EFFECT_MEMORY, [0; 3], &mem);
        let c = ring.colours().expect("modelled");
        assert_eq!(c[0], [255, 0, 0]);
        assert_eq!(c[1], [0, 255, 0]);
        assert_eq!(c[2], [0, 0, 255]);
        assert_eq!(c[3], [8, 20, 33], "RGB565 keeps 5/6/5 bits");
        assert_eq!(c[4], [0, 0, 0]);
    }

    #[test]
    fn solid_colour_fades_in_and_other_effects_are_unknown() {
        let mut ring = LedRing::default();
        for _ in 0..30 {
            ring.tick(EFFECT_SOLID, [100, 50, 0], &[0; 24]);
        }
        assert_eq!(ring.colours().expect("modelled")[5], [100, 50, 0]);
        ring.tick(6, [0; 3], &[0; 24]);
        assert_eq!(ring.colours(), None);
        ring.tick(EFFECT_BLACK, [0; 3], &[0; 24]);
        assert_eq!(ring.colours(), Some([[0; 3]; RING_LEDS]));
    }
}
