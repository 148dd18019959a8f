# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""systemd paths shared by the modules that mask units (bot_units) and read the mask (bot_feed_info)."""

from __future__ import annotations

# Where the collection's mask lives: ``systemctl mask`` refuses units whose file is in
# /etc/systemd/system and a --runtime mask does not override them, so the mask is a /dev/null
# link in the control directory, the unit directory systemd reads first (bot_units).
MASK_DIR = "/etc/systemd/system.control"
