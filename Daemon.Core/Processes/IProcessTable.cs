using System;

namespace Daemon.Processes;

/// <summary>Finds live processes by pid: the seam through which the commands signal, wait and describe.</summary>
internal interface IProcessTable
{
    /// <summary>A handle on the live process <paramref name="pid"/>, or null when there is none.</summary>
    IProcessHandle? Open(int pid);

    /// <summary>When <paramref name="pid"/> started, in the kernel's words; null when that cannot be read.</summary>
    DateTimeOffset? StartTime(int pid);

    /// <summary>
    /// What descriptor 2 of <paramref name="pid"/> is, as /proc/PID/fd/2 names it: a path (which
    /// ends in " (deleted)" once the file was removed; a file only named so, and not removed, comes
    /// with <c>ProcessTable.NotDeletedMark</c> appended), or <c>socket:[N]</c>, <c>pipe:[N]</c>;
    /// null when it cannot be read (another user's process).
    /// </summary>
    string? StandardErrorTarget(int pid);

    /// <summary>
    /// Whether <paramref name="process"/> runs this same program file (<see cref="ProgramIdentity"/>),
    /// read while the handle holds the process, so that a pid reused meanwhile is never taken for it.
    /// This very command is <see cref="ProgramMatch.Other"/>.
    /// </summary>
    ProgramMatch RunsThisProgram(IProcessHandle process);
}
