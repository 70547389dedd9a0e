using System.Collections.Generic;
using System.Globalization;
using System.IO;
using Daemon.Interop;

namespace Daemon.Launching;

/// <summary>
/// Descriptor hygiene across the re-executions. Inside a running .NET process nothing we did not
/// open may be closed (the runtime holds its own), so whatever a stage inherited is marked
/// close-on-exec instead, and the next stage never receives it.
///
/// The daemon's layout: 0 = /dev/null, 1 and 2 = the log file (opened by the daemon), the readiness
/// pipe's write end (until ready), the locked pid file (close-on-exec), and the descriptors the
/// subclass keeps (<see cref="DaemonOptions.KeepDescriptors"/>).
/// </summary>
internal static class Descriptors
{
    /// <summary>Marks every descriptor above 2 close-on-exec except those in <paramref name="keep"/>.</summary>
    public static void CloseOnExecAllBut(IReadOnlyCollection<int> keep)
    {
        // One system call where the kernel has close_range(2), instead of a /proc/self/fd walk.
        if (Posix.SetCloseOnExecFrom(Posix.StandardError + 1))
        {
            foreach (int fd in keep)
            {
                _ = Posix.SetCloseOnExec(fd, false);
            }

            return;
        }

        foreach (int fd in OpenDescriptors())
        {
            if (fd > Posix.StandardError)
            {
                _ = Posix.SetCloseOnExec(fd, !Contains(keep, fd));
            }
        }
    }

    /// <summary>Points 0, 1 and 2 at /dev/null, so no terminal or caller's pipe reaches the next stage.</summary>
    public static void StandardStreamsToNull()
    {
        int fd = Posix.Open("/dev/null", OpenFlags.O_RDWR | OpenFlags.O_CLOEXEC, 0, out int errno);
        if (fd < 0)
        {
            throw DaemonException.FromErrno("cannot open /dev/null", errno);
        }

        try
        {
            for (int target = Posix.StandardInput; target <= Posix.StandardError; target++)
            {
                if (Posix.Dup2(fd, target, out errno) < 0)
                {
                    throw DaemonException.FromErrno($"cannot redirect descriptor {target} to /dev/null", errno);
                }
            }
        }
        finally
        {
            Posix.Close(fd);
        }
    }

    /// <summary>The descriptors open in this process, from /proc/self/fd.</summary>
    public static List<int> OpenDescriptors()
    {
        var fds = new List<int>();
        foreach (string entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            if (int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int fd))
            {
                fds.Add(fd);
            }
        }

        return fds;
    }

    private static bool Contains(IReadOnlyCollection<int> set, int fd)
    {
        foreach (int x in set)
        {
            if (x == fd)
            {
                return true;
            }
        }

        return false;
    }
}
