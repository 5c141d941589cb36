// SPDX-License-Identifier: Apache-2.0
//! The S3 front end (in progress).
