"""Reference solutions of every chapter's exercises, kept in one place (teachers: strip this module
from the students' copy to hide them). Each chapter adds its functions under a ``# Chapter N`` heading."""

from __future__ import annotations
