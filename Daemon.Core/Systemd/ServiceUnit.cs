using System;
using System.IO;

namespace Daemon.Systemd;

/// <summary>
/// The systemd service a process runs in, as the kernel tells it: the unit's name from its cgroup.
/// </summary>
internal static class ServiceUnit
{
    /// <summary>The service process <paramref name="pid"/> (0: this one) runs in (<c>NAME.service</c>), or null outside one.</summary>
    public static string? Of(int pid = 0)
    {
        try
        {
            return FromCgroup(File.ReadAllText(pid == 0 ? "/proc/self/cgroup" : $"/proc/{pid}/cgroup"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// The service named by the lines of a /proc/PID/cgroup: the last ".service" element of the
    /// unified hierarchy's path (0::/system.slice/NAME.service), or of systemd's own (name=systemd:).
    /// </summary>
    internal static string? FromCgroup(string cgroup)
    {
        foreach (string line in cgroup.Split('\n'))
        {
            if (line.StartsWith("0::", StringComparison.Ordinal) || line.Contains(":name=systemd:", StringComparison.Ordinal))
            {
                string path = line[(line.LastIndexOf(':') + 1)..];
                string last = path[(path.LastIndexOf('/') + 1)..];
                if (last.EndsWith(".service", StringComparison.Ordinal))
                {
                    return last;
                }
            }
        }

        return null;
    }
}
