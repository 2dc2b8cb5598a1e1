//! NTSTATUS / NDIS_STATUS values the engine returns (`nbl.md §5`, `injection.md`).
//! Unsigned 32-bit, as Windows prints them; success is "high bit clear" (`NT_SUCCESS`).

pub type NtStatus = u32;

pub const STATUS_SUCCESS: NtStatus = 0x0000_0000;
pub const STATUS_PENDING: NtStatus = 0x0000_0103;
pub const STATUS_BUFFER_OVERFLOW: NtStatus = 0x8000_0005;
pub const STATUS_UNSUCCESSFUL: NtStatus = 0xC000_0001;
pub const STATUS_INVALID_HANDLE: NtStatus = 0xC000_0008;
pub const STATUS_INVALID_PARAMETER: NtStatus = 0xC000_000D;
pub const STATUS_NO_MEMORY: NtStatus = 0xC000_0017;
pub const STATUS_BUFFER_TOO_SMALL: NtStatus = 0xC000_0023;
pub const STATUS_INSUFFICIENT_RESOURCES: NtStatus = 0xC000_009A;
pub const STATUS_NOT_SUPPORTED: NtStatus = 0xC000_00BB;
pub const STATUS_INVALID_DEVICE_STATE: NtStatus = 0xC000_0184;
pub const STATUS_INVALID_BUFFER_SIZE: NtStatus = 0xC000_0206;
pub const STATUS_DATA_NOT_ACCEPTED: NtStatus = 0xC000_021B;
pub const STATUS_NOT_FOUND: NtStatus = 0xC000_0225;
pub const STATUS_FWP_NULL_POINTER: NtStatus = 0xC022_001C;
pub const STATUS_FWP_OUT_OF_BOUNDS: NtStatus = 0xC022_0028;
pub const STATUS_FWP_INVALID_PARAMETER: NtStatus = 0xC022_0035;
pub const STATUS_FWP_TCPIP_NOT_READY: NtStatus = 0xC022_0100;
pub const STATUS_FWP_INJECT_HANDLE_CLOSING: NtStatus = 0xC022_0101;
pub const STATUS_FWP_INJECT_HANDLE_STALE: NtStatus = 0xC022_0102;
pub const STATUS_FWP_CANNOT_PEND: NtStatus = 0xC022_0103;

pub const NDIS_STATUS_SUCCESS: NtStatus = STATUS_SUCCESS;
pub const NDIS_STATUS_FAILURE: NtStatus = STATUS_UNSUCCESSFUL;
pub const NDIS_STATUS_RESOURCES: NtStatus = STATUS_INSUFFICIENT_RESOURCES;
pub const NDIS_STATUS_INVALID_PARAMETER: NtStatus = STATUS_INVALID_PARAMETER;
pub const NDIS_STATUS_INVALID_LENGTH: NtStatus = 0xC001_0014;
pub const NDIS_STATUS_BUFFER_TOO_SHORT: NtStatus = 0xC001_0016;

/// `NT_SUCCESS(s)`: the status read as a signed 32-bit value is non-negative.
pub const fn nt_success(status: NtStatus) -> bool {
    (status as i32) >= 0
}
