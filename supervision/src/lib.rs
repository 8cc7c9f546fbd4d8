//! OTP supervisors for arbor.
