using System;
using System.IO;
using System.Text;
using Daemon.Interop;

namespace Daemon.Processes;

/// <summary>
/// Which program file a process runs: its executable and, under the dotnet host, the app's .dll
/// (the first argument after the host's own options). Compared by file (device and inode) and by
/// path, so that a process still running a file replaced since (an upgrade: /proc/PID/exe then
/// reads "PATH (deleted)") runs the program now at that path; an apphost and "dotnet APP.dll" of
/// the same app beside it are the same program.
/// </summary>
/// <param name="Executable">The executable's path, without the kernel's " (deleted)".</param>
/// <param name="ExecutableFile">The executable file itself, when it can be looked at.</param>
/// <param name="App">Under the dotnet host: the app's .dll, an absolute path; otherwise null.</param>
/// <param name="AppFile">The .dll file itself, when it can be looked at.</param>
internal sealed record ProgramIdentity(string Executable, FileStatus? ExecutableFile, string? App, FileStatus? AppFile)
{
    private const string Deleted = ProcessTable.DeletedMark;

    /// <summary>This process's program.</summary>
    public static ProgramIdentity Self()
    {
        string executable = Strip(new FileInfo("/proc/self/exe").LinkTarget ?? Environment.ProcessPath ?? "");
        FileStatus? file = Posix.Stat("/proc/self/exe", out FileStatus status, out _) == 0 ? status : null;
        if (!IsDotnetHost(executable))
        {
            return new ProgramIdentity(executable, file, null, null);
        }

        // Under "dotnet app.dll" the runtime's first argument is the app, as an absolute path.
        string app = Path.GetFullPath(Environment.GetCommandLineArgs()[0]);
        return new ProgramIdentity(executable, file, app, StatOrNull(app));
    }

    /// <summary>
    /// What process <paramref name="pid"/> runs, from /proc; null when it cannot be read:
    /// <paramref name="denied"/> then says whether for lack of permission (another user's
    /// process) rather than because there is none (it exited; a kernel thread).
    /// </summary>
    public static ProgramIdentity? Of(int pid, out bool denied)
    {
        denied = false;
        string proc = $"/proc/{pid}";
        try
        {
            // Asked first for its errno: reading the link of another user's process fails quietly.
            if (Posix.Stat($"{proc}/exe", out FileStatus file, out int errno) < 0)
            {
                denied = errno is Errno.EACCES or Errno.EPERM;
                return null;
            }

            string? link = new FileInfo($"{proc}/exe").LinkTarget;
            if (link is null)
            {
                return null;
            }

            string executable = Strip(link);
            if (!IsDotnetHost(executable))
            {
                return new ProgramIdentity(executable, file, null, null);
            }

            string? app = AppArgument(File.ReadAllBytes($"{proc}/cmdline"));
            if (app is null)
            {
                return new ProgramIdentity(executable, file, null, null);
            }

            // A relative path is relative to where it was started; the working directory of a
            // foreground process (run) is still that one. Looked at through /proc: the same file.
            string absolute = Path.IsPathRooted(app) ? app : Path.GetFullPath(Path.Combine(new FileInfo($"{proc}/cwd").LinkTarget ?? "/", app));
            return new ProgramIdentity(executable, file, absolute, StatOrNull(Path.IsPathRooted(app) ? app : $"{proc}/cwd/{app}"));
        }
        catch (UnauthorizedAccessException)
        {
            denied = true;
            return null;
        }
        catch (IOException e)
        {
            denied = e.HResult == Errno.EACCES || e.HResult == Errno.EPERM;
            return null;
        }
    }

    /// <summary>True when both run one program file (see the type's summary).</summary>
    public bool IsSameProgram(ProgramIdentity other)
    {
        if (App is null && other.App is null)
        {
            return SameFile(ExecutableFile, other.ExecutableFile) || Executable == other.Executable;
        }

        if (App is not null && other.App is not null)
        {
            return SameFile(AppFile, other.AppFile) || App == other.App;
        }

        // An apphost runs APP.dll beside it: "dotnet APP.dll" is the same program.
        return Key == other.Key;
    }

    private string Key => App is null ? Executable : App.EndsWith(".dll", StringComparison.Ordinal) ? App[..^4] : App;

    private static bool SameFile(FileStatus? a, FileStatus? b) => a is { } x && b is { } y && x.IsSameFile(y);

    private static bool IsDotnetHost(string executable) => Path.GetFileName(executable) == "dotnet";

    private static string Strip(string link) => link.EndsWith(Deleted, StringComparison.Ordinal) ? link[..^Deleted.Length] : link;

    private static FileStatus? StatOrNull(string path) => Posix.Stat(path, out FileStatus status, out _) == 0 ? status : null;

    /// <summary>
    /// The app in a dotnet host's command line (NUL-separated): after "exec" and the host's options
    /// (each "--name value"), the first argument. Null when there is none.
    /// </summary>
    internal static string? AppArgument(ReadOnlySpan<byte> commandLine)
    {
        string[] args = Encoding.UTF8.GetString(commandLine).TrimEnd('\0').Split('\0');
        int i = 1;
        if (i < args.Length && args[i] == "exec")
        {
            i++;
        }

        while (i < args.Length && args[i].StartsWith("--", StringComparison.Ordinal))
        {
            i += 2;
        }

        return i < args.Length && args[i].Length > 0 ? args[i] : null;
    }
}
