using System;
using System.IO;
using System.Threading;
using Daemon.Interop;

namespace Daemon.Processes;

/// <summary>The real process table, through pidfds where the kernel has them (Linux 5.3 and later).</summary>
internal sealed class ProcessTable : IProcessTable
{
    private static readonly Lazy<ProgramIdentity> _self = new(ProgramIdentity.Self);

    /// <summary>What the kernel appends to the link of a removed file.</summary>
    public const string DeletedMark = " (deleted)";

    /// <summary>
    /// Appended by <see cref="StandardErrorTarget"/> to a path that only ends like a removed
    /// file's: a NUL, which no path holds, so the text cannot be taken for the kernel's mark.
    /// </summary>
    public const string NotDeletedMark = "\0";

    public static ProcessTable Instance { get; } = new();

    public IProcessHandle? Open(int pid)
    {
        if (pid <= 0)
        {
            // kill(0) and kill(-1) reach whole groups and every process: never a daemon's pid.
            return null;
        }

        int pidfd = Posix.PidfdOpen(pid, out int errno);
        if (pidfd >= 0)
        {
            return new PidfdProcess(pid, pidfd);
        }

        return errno switch
        {
            Errno.ESRCH => null,
            Errno.ENOSYS or Errno.EPERM => LegacyProcess.Open(pid),
            _ => throw DaemonException.FromErrno($"cannot open process {pid}", errno),
        };
    }

    public DateTimeOffset? StartTime(int pid)
    {
        // The kernel's start time, which no one can rewrite the way a pid file's mtime can be
        // touched. Read by hand: System.Diagnostics.Process would make every Native AOT process
        // of the program larger, and so slower to start.
        try
        {
            DateTimeOffset now = DateTimeOffset.UtcNow;
            return ProcStat.StartTime(File.ReadAllText($"/proc/{pid}/stat"), File.ReadAllText("/proc/uptime"), now, Posix.ClockTicksPerSecond());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public string? StandardErrorTarget(int pid)
    {
        try
        {
            string? target = new FileInfo($"/proc/{pid}/fd/2").LinkTarget;

            // The kernel marks a removed file with " (deleted)", and a file may be named so: the open
            // file's link count tells. A name that only looks deleted is shown as the path it is.
            return target is not null && target.EndsWith(DeletedMark, StringComparison.Ordinal)
                && Posix.Stat($"/proc/{pid}/fd/2", out FileStatus open, out _) == 0 && open.Links > 0
                ? target + NotDeletedMark
                : target;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public ProgramMatch RunsThisProgram(IProcessHandle process)
    {
        if (process.Pid == Environment.ProcessId)
        {
            return ProgramMatch.Other;
        }

        ProgramIdentity? program = ProgramIdentity.Of(process.Pid, out bool denied);

        // Still alive after the look: /proc/PID was this process all along, as a pid is reused only once it is reaped.
        if (process.WaitForExit(TimeSpan.Zero))
        {
            return ProgramMatch.Exited;
        }

        return program is null ? (denied ? ProgramMatch.Unknown : ProgramMatch.Other)
            : program.IsSameProgram(_self.Value) ? ProgramMatch.Same
            : ProgramMatch.Other;
    }

    private static DaemonException SignalError(int pid, int errno) =>
        DaemonException.FromErrno($"cannot signal pid {pid}", errno);

    private sealed class PidfdProcess(int pid, int pidfd) : IProcessHandle
    {
        private int _pidfd = pidfd;

        public int Pid => pid;

        public bool Signal(int signal)
        {
            if (Posix.PidfdSendSignal(_pidfd, signal, out int errno) == 0)
            {
                return true;
            }

            // ESRCH: it exited (perhaps a zombie not yet reaped by init); either way it is stopped.
            return errno == Errno.ESRCH ? false : throw SignalError(pid, errno);
        }

        public bool WaitForExit(TimeSpan timeout)
        {
            // A pidfd turns readable the moment the process exits, before init reaps it.
            return Posix.WaitReadable(_pidfd, (int)Math.Min(int.MaxValue, timeout.TotalMilliseconds), out _);
        }

        public void Dispose()
        {
            if (_pidfd >= 0)
            {
                Posix.Close(_pidfd);
                _pidfd = -1;
            }
        }
    }

    /// <summary>Kernels without pidfds: kill(2) and a backing-off look at /proc.</summary>
    private sealed class LegacyProcess(int pid) : IProcessHandle
    {
        public int Pid => pid;

        public static LegacyProcess? Open(int pid) => HasExited(pid) ? null : new LegacyProcess(pid);

        public bool Signal(int signal)
        {
            if (Posix.Kill(pid, signal, out int errno) == 0)
            {
                return !HasExited(pid);
            }

            return errno == Errno.ESRCH ? false : throw SignalError(pid, errno);
        }

        public bool WaitForExit(TimeSpan timeout)
        {
            long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
            int pause = 1;
            while (!HasExited(pid))
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0)
                {
                    return false;
                }

                Thread.Sleep((int)Math.Min(pause, left));
                pause = Math.Min(pause * 2, 50);
            }

            return true;
        }

        public void Dispose()
        {
        }

        private static bool HasExited(int pid)
        {
            if (Posix.Kill(pid, 0, out int errno) < 0 && errno == Errno.ESRCH)
            {
                return true;
            }

            try
            {
                // "pid (comm) S ...": the state follows the last ')'; Z is a zombie, which has exited.
                string stat = File.ReadAllText($"/proc/{pid}/stat");
                int close = stat.LastIndexOf(')');
                return close > 0 && close + 2 < stat.Length && stat[close + 2] is 'Z' or 'X';
            }
            catch (IOException)
            {
                return true;
            }
        }
    }
}
