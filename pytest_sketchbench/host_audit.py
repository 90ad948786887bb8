"""The host audit: was this machine fit to time on while the run measured, and if not, why.

pyperf and Google Benchmark warn when the host is unfit (load, frequency scaling, ASLR); a VM adds steal
time (a noisy neighbour on the hypervisor) and a container a CPU quota that throttles. Every run records
these beside its figures. A wall-clock figure judged on an unfit host is *inconclusive*, never a guess.

Linux files only (``/proc``, ``/sys``); elsewhere each fact reads as None and only the load average counts.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

BUSY_LOAD_PER_CORE = 1.5  # more runnable work than this per core: time-shared in slices as short as a call
MAX_STEAL_SHARE = 0.05     # more than 5 % of CPU time taken by the hypervisor for other guests
MAX_THROTTLED_SHARE = 0.05  # more than 5 % of the wall time throttled by the cgroup's CPU quota
MAX_CPU_PRESSURE = 0.30  # tasks waited for a core over 30 % of the last 10 s (Linux PSI; -n 2 alone: up to 18 %)
# even where the load average, a one-minute mean, has not caught up yet (or another pinned process shares our core)
# ... unless the waiting was the run's own: other processes used less than this many cores meanwhile (Chromium's
# renderer and GPU processes, a model's own threads, compete with each other; no neighbour does)
MAX_FOREIGN_CORES = 0.25
PRESSURE_WINDOW_S = 10.0  # what PSI's avg10 covers: the foreign share is taken over about the same span
CGROUP = Path("/sys/fs/cgroup")


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _cpu_ticks() -> list[int] | None:
    """/proc/stat's first line: user nice system idle iowait irq softirq steal …, in clock ticks since boot."""
    text = _read("/proc/stat")
    return [int(v) for v in text.splitlines()[0].split()[1:]] if text else None


def cpu_jiffies() -> tuple[int, int] | None:
    """(all CPU time, steal time) since boot, in clock ticks."""
    fields = _cpu_ticks()
    if fields is None:
        return None
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total, fields[7] if len(fields) > 7 else 0


def busy_seconds() -> float | None:
    """CPU time every process on the host has used since boot (user, nice, system, irq, softirq), in seconds."""
    fields = _cpu_ticks()
    if fields is None:
        return None
    return (sum(fields[:3]) + sum(fields[5:7])) / os.sysconf("SC_CLK_TCK")


def own_cpu_times() -> dict[tuple[int, float], float] | None:
    """CPU seconds of this process and of every process it started (a browser, a worker), by (pid, start time);
    each entry includes the children that process already reaped (a renderer that ended, reaped by Chromium's
    zygote). The run's own work: competing with itself is not a neighbour's load."""
    try:
        import psutil
    except ImportError:
        return None
    try:
        me = psutil.Process()
        processes = [me, *me.children(recursive=True)]
    except psutil.Error:
        return None
    times: dict[tuple[int, float], float] = {}
    for process in processes:
        try:
            cpu = process.cpu_times()
            times[(process.pid, process.create_time())] = cpu.user + cpu.system + cpu.children_user \
                + cpu.children_system
        except psutil.Error:  # gone in between: its time reaches its parent's children_* once reaped
            continue
    return times


def own_seconds_between(then: dict[tuple[int, float], float], now: dict[tuple[int, float], float]) -> float:
    """The own processes' CPU time between two samples: a process in both adds its growth, one started since adds
    all of its time; one that ended since adds nothing (undercounting ours can only call a host unfit)."""
    return sum(seconds - then.get(key, 0.0) for key, seconds in now.items())


def cpu_pressure() -> float | None:
    """Linux pressure stall information: the share of the last 10 s in which some task waited for a CPU."""
    text = _read("/proc/pressure/cpu")
    if not text or not text.startswith("some"):
        return None
    fields = dict(item.split("=") for item in text.splitlines()[0].split()[1:])
    return float(fields["avg10"]) / 100 if "avg10" in fields else None


def cgroup_throttling() -> dict | None:
    """cgroup v2 ``cpu.stat``: periods, throttled periods and throttled microseconds so far."""
    text = _read(CGROUP / "cpu.stat")
    if not text:
        return None
    values = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
    return {key: int(values[key]) for key in ("nr_periods", "nr_throttled", "throttled_usec") if key in values}


def cpu_quota() -> float | None:
    """The cgroup's CPU quota in cores (``cpu.max`` "200000 100000" → 2.0); None when unlimited or unknown."""
    text = _read(CGROUP / "cpu.max")
    if not text or text.startswith("max"):
        return None
    quota, period = text.split()[:2]
    return int(quota) / int(period)


def static_facts() -> dict:
    """What does not change during a run: governor, frequency, turbo, SMT, ASLR, the cgroup quota."""
    cpufreq = Path("/sys/devices/system/cpu/cpu0/cpufreq")
    freq = _read(cpufreq / "scaling_cur_freq")
    no_turbo = _read("/sys/devices/system/cpu/intel_pstate/no_turbo")
    boost = _read("/sys/devices/system/cpu/cpufreq/boost")
    turbo = (no_turbo == "0") if no_turbo is not None else (boost == "1") if boost is not None else None
    smt = _read("/sys/devices/system/cpu/smt/active")
    aslr = _read("/proc/sys/kernel/randomize_va_space")
    return {"governor": _read(cpufreq / "scaling_governor"), "frequency_mhz": int(freq) / 1000 if freq else None,
            "turbo": turbo, "smt": None if smt is None else smt == "1",
            "aslr": None if aslr is None else aslr != "0", "cpu_quota_cores": cpu_quota(),
            "cores": os.cpu_count()}


def load_average() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):  # not on every platform
        return None


@dataclass
class HostAudit:
    """Counters taken when the run starts, compared whenever a verdict needs to know the host's state."""

    cores: int
    started: float = field(default_factory=time.monotonic)
    jiffies: tuple[int, int] | None = field(default_factory=cpu_jiffies)
    throttling: dict | None = field(default_factory=cgroup_throttling)
    facts: dict = field(default_factory=static_facts)
    loads: list[float] = field(default_factory=list)
    # (monotonic s, host busy s, own CPU s by process): the foreign share over about PSI's window
    cpu_samples: list[tuple[float, float, dict]] = field(default_factory=list)

    def foreign_cores(self) -> float | None:
        """Cores' worth of CPU that other processes used over about the last 10 s (None until a sample 1 s old
        exists, or off Linux)."""
        busy, own, clock = busy_seconds(), own_cpu_times(), time.monotonic()
        if busy is None or own is None:
            return None
        self.cpu_samples = [s for s in self.cpu_samples if clock - s[0] <= 6 * PRESSURE_WINDOW_S]
        old_enough = [s for s in self.cpu_samples if clock - s[0] >= 1.0]
        self.cpu_samples.append((clock, busy, own))
        if not old_enough:
            return None
        then = min(old_enough, key=lambda s: abs(clock - s[0] - PRESSURE_WINDOW_S))
        elapsed = clock - then[0]
        foreign = ((busy - then[1]) - own_seconds_between(then[2], own)) / elapsed
        return min(max(0.0, foreign), float(self.cores))

    def now(self) -> dict:
        """The host since the run started: load average (now, mean and highest seen), steal and throttled
        shares; ``unfit`` lists why timing on it cannot be trusted (empty: fit)."""
        load = load_average()
        if load is not None:
            self.loads.append(load)
        steal = throttled = None
        jiffies = cpu_jiffies()
        if jiffies and self.jiffies and jiffies[0] > self.jiffies[0]:
            steal = (jiffies[1] - self.jiffies[1]) / (jiffies[0] - self.jiffies[0])
        counters, elapsed = cgroup_throttling(), time.monotonic() - self.started
        if counters and self.throttling and elapsed > 0 and "throttled_usec" in counters:
            throttled = (counters["throttled_usec"] - self.throttling.get("throttled_usec", 0)) / 1e6 / elapsed
        pressure, foreign = cpu_pressure(), self.foreign_cores()
        unfit = []
        if pressure is not None and pressure > MAX_CPU_PRESSURE and (foreign is None or foreign > MAX_FOREIGN_CORES):
            others = "" if foreign is None else f"; other processes used {foreign:.1f} cores"
            unfit.append(f"CPU pressure: tasks waited for a core {pressure:.0%} of the last 10 s{others}")
        if load is not None and load > BUSY_LOAD_PER_CORE * self.cores:
            unfit.append(f"host oversubscribed, load {load:.1f} on {self.cores} cores")
        if steal is not None and steal > MAX_STEAL_SHARE:
            unfit.append(f"steal {steal:.0%}")
        if throttled is not None and throttled > MAX_THROTTLED_SHARE:
            unfit.append(f"CPU quota throttled {throttled:.0%} of the time")
        return {"load_average": load, "load_mean": sum(self.loads) / len(self.loads) if self.loads else None,
                "load_max": max(self.loads) if self.loads else None, "cpu_pressure": pressure,
                "foreign_cores": foreign, "steal_share": steal,
                "throttled_share": throttled, "unfit": unfit}

    def summary(self, noise: dict | None = None) -> dict:
        """The audit as reports show it: the static facts, the run's figures so far, the measured noise."""
        return {**self.facts, **self.now(), "noise": noise}


def audit_line(audit: dict) -> str:
    """One line for the header and the reports: 'host fit: load 0.4 (max 1.2), steal 0 %, …'."""
    def share(value):
        return "?" if value is None else f"{value:.0%}"

    load = audit.get("load_average")
    parts = [f"load {load:.1f}" if load is not None else "load ?"]
    if audit.get("load_max") is not None:
        parts[0] += f" (max {audit['load_max']:.1f})"
    parts.append(f"CPU pressure {share(audit.get('cpu_pressure'))}")
    if audit.get("foreign_cores") is not None:
        parts[-1] += f" (other processes {audit['foreign_cores']:.1f} cores)"
    parts.append(f"steal {share(audit.get('steal_share'))}")
    if audit.get("cpu_quota_cores") is not None:
        parts.append(f"quota {audit['cpu_quota_cores']:g} cores, throttled {share(audit.get('throttled_share'))}")
    parts.append(f"governor {audit.get('governor') or '?'}")
    if audit.get("turbo") is not None:
        parts.append("turbo on" if audit["turbo"] else "turbo off")
    if audit.get("smt") is not None:
        parts.append("SMT on" if audit["smt"] else "SMT off")
    if audit.get("aslr") is not None:
        parts.append("ASLR on" if audit["aslr"] else "ASLR off")
    noise = audit.get("noise") or {}
    if noise.get("block_spread") is not None:
        parts.append(f"calibration spread across blocks {noise['block_spread']:.1%}")
    verdict = "host unfit (" + "; ".join(audit["unfit"]) + ")" if audit.get("unfit") else "host fit"
    return f"{verdict}: " + ", ".join(parts)
