// SPDX-License-Identifier: Apache-2.0
//! Request and store metrics (in progress).
