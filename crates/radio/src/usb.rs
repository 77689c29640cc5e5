//! Finding the Crazyradio without touching rusb's global context.
//!
//! The `crazyradio` crate enumerates devices through `rusb::devices()`, i.e. rusb's global
//! context, which panics ("Can't init Global usb context") on machines without usbfs (CI, VMs).
//! So before handing a `radio://` URI to crazyflie-link we look for the dongle ourselves through
//! a private `rusb::Context`, whose creation fails with an `Err` instead.

use crate::LinkError;
use crate::error::CRAZYRADIO_NAME;
use rusb::UsbContext;
use std::time::Duration;

/// Crazyradio PA and Crazyradio 2.0 (nRF24LU1+ / nRF52840 firmware).
pub const CRAZYRADIO_VID_PID: (u16, u16) = (0x1915, 0x7777);
/// A Crazyradio waiting in its bootloader.
pub const CRAZYRADIO_BOOTLOADER_VID_PID: (u16, u16) = (0x1915, 0x0101);
/// A Crazyflie 2.x plugged in over USB.
pub const CRAZYFLIE_USB_VID_PID: (u16, u16) = (0x0483, 0x5740);

/// A Crazyradio that was found and could be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DongleInfo {
    /// Index among the Crazyradios present (the `<dongle>` of `radio://<dongle>/…`).
    pub index: usize,
    pub bus: u8,
    pub address: u8,
    /// USB serial number string, if the dongle reports one.
    pub serial: Option<String>,
    /// Firmware version from `bcdDevice` (e.g. "0.55" for a Crazyradio PA, "5.x" for 2.0).
    pub firmware_version: String,
    /// How many Crazyradios are present in total.
    pub dongles_present: usize,
}

/// Looks for the first Crazyradio and checks that it can be opened.
pub fn probe_crazyradio() -> Result<DongleInfo, LinkError> {
    probe_crazyradio_nth(0)
}

/// Looks for the `index`-th Crazyradio (the order crazyflie-link uses) and checks that it can
/// be opened. `NoUsb` when there is no USB at all, `NoDongle` when no 1915:7777 device is
/// present, `Permission` when it is present but cannot be opened.
pub fn probe_crazyradio_nth(index: usize) -> Result<DongleInfo, LinkError> {
    // rusb does not panic here, but a broken libusb build might: never let it take the
    // caller down.
    match std::panic::catch_unwind(|| probe_inner(index)) {
        Ok(result) => result,
        Err(panic) => Err(LinkError::NoUsb {
            detail: format!("libusb panicked: {}", panic_message(panic.as_ref())),
        }),
    }
}

fn probe_inner(index: usize) -> Result<DongleInfo, LinkError> {
    let context = rusb::Context::new().map_err(|e| LinkError::NoUsb {
        detail: format!("libusb could not start: {e}"),
    })?;
    let devices = context.devices().map_err(|e| LinkError::NoUsb {
        detail: format!("cannot list USB devices: {e}"),
    })?;
    let mut radios = Vec::new();
    let mut bootloader_present = false;
    for device in devices.iter() {
        let Ok(desc) = device.device_descriptor() else {
            continue;
        };
        let id = (desc.vendor_id(), desc.product_id());
        if id == CRAZYRADIO_VID_PID {
            radios.push((device, desc));
        } else if id == CRAZYRADIO_BOOTLOADER_VID_PID {
            bootloader_present = true;
        }
    }
    let dongles_present = radios.len();
    let Some((device, desc)) = radios.into_iter().nth(index) else {
        return Err(LinkError::NoDongle {
            index,
            found: dongles_present,
            bootloader_present,
        });
    };
    let bus = device.bus_number();
    let address = device.address();
    let handle = device.open().map_err(|e| match e {
        rusb::Error::Access | rusb::Error::Busy => LinkError::Permission {
            bus,
            address,
            detail: format!("{e}"),
        },
        other => LinkError::Usb {
            detail: format!("opening {CRAZYRADIO_NAME} on bus {bus} address {address}: {other}"),
        },
    })?;
    let timeout = Duration::from_millis(500);
    let serial = handle
        .read_languages(timeout)
        .ok()
        .and_then(|langs| langs.first().copied())
        .and_then(|lang| handle.read_serial_number_string(lang, &desc, timeout).ok());
    let v = desc.device_version();
    Ok(DongleInfo {
        index,
        bus,
        address,
        serial,
        firmware_version: format!("{}.{}{}", v.major(), v.minor(), v.sub_minor()),
        dongles_present,
    })
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LinkErrorKind;

    /// On this machine (no usbfs) and on any machine without a dongle the probe reports the
    /// missing hardware as an error, never a panic. With a dongle it returns its details.
    #[test]
    fn probe_never_panics() {
        match probe_crazyradio() {
            Ok(info) => assert!(info.dongles_present >= 1),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    LinkErrorKind::NoHardware | LinkErrorKind::Permission | LinkErrorKind::Io
                ),
                "{e}"
            ),
        }
        // An index far beyond any rig's dongles is always missing (or there is no USB).
        let e = probe_crazyradio_nth(1000).expect_err("no 1001 dongles");
        assert_eq!(e.kind(), LinkErrorKind::NoHardware, "{e}");
    }
}
