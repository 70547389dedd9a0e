using System;
using System.IO;
using System.Text;
using System.Threading.Tasks;
using Daemon.Interop;
using Microsoft.Win32.SafeHandles;

namespace Daemon.Systemd;

/// <summary>
/// The systemd service this process runs in, as systemd itself tells it: the unit's name from
/// /proc/self/cgroup, its settings from <c>systemctl show</c>.
/// </summary>
internal static class ServiceUnit
{
    private static readonly TimeSpan _answer = TimeSpan.FromSeconds(10);

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

    /// <summary>
    /// A property of <paramref name="unit"/> (<c>systemctl show --property=NAME --value</c>), or
    /// null when systemctl cannot be run or does not answer within 10 s.
    /// </summary>
    public static string? Property(string unit, string name)
    {
        if (Posix.Pipe(out int readEnd, out int writeEnd, out _) < 0)
        {
            return null;
        }

        _ = Posix.SetCloseOnExec(readEnd, true);
        int child;
        try
        {
            // The shell points systemctl's output at the pipe; the words are its arguments, not shell text.
            string[] argv = ["sh", "-c", $"exec systemctl show --property=\"$1\" --value -- \"$2\" >/proc/self/fd/{writeEnd} 2>/dev/null </dev/null", "sh", name, unit];
            if (Posix.Spawn("/bin/sh", argv, EnvironmentOfThisProcess(), [], out child) != 0)
            {
                Posix.Close(readEnd);
                return null;
            }
        }
        finally
        {
            Posix.Close(writeEnd);
        }

        using var output = new FileStream(new SafeFileHandle(readEnd, ownsHandle: true), FileAccess.Read);
        Task<string> reading = new StreamReader(output, Encoding.UTF8).ReadToEndAsync();
        string? answer = reading.Wait(_answer) ? reading.Result.Trim() : null;
        if (answer is null)
        {
            _ = Posix.Kill(child, Signal.SIGKILL, out _);
        }

        _ = Posix.WaitForChild(child, out _);
        return string.IsNullOrEmpty(answer) ? null : answer;
    }

    private static string[] EnvironmentOfThisProcess()
    {
        var variables = new System.Collections.Generic.List<string>();
        foreach (System.Collections.DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            variables.Add($"{entry.Key}={entry.Value}");
        }

        return [.. variables];
    }
}
