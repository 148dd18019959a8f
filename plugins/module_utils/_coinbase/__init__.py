# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's private Coinbase Advanced Trade client. Not a public API: it may change."""
