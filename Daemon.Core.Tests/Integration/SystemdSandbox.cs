using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// A real systemd (Debian 12's 252) for one fixture, booted by the systemd-sandbox tool as PID 1 of
/// namespaces of its own, on an overlay of <c>/</c> with its own /etc, /tmp and /run: units are
/// installed into it, <c>systemctl</c> and <c>journalctl</c> run inside it. The network is the
/// host's, so its services are reached on 127.0.0.1 at ports of the test's own. Only the
/// fixture's folder is shared (bind-mounted at the same path); disposing stops systemd and
/// everything it started. Never boot systemd another way: sharing the host's root, it would
/// empty the host's /tmp.
/// </summary>
public sealed class SystemdSandbox : IDisposable
{
    private static readonly TimeSpan _patience = TimeSpan.FromSeconds(60);
    private readonly ExampleDaemon _files;
    private readonly string _name;

    private SystemdSandbox(ExampleDaemon files, string name)
    {
        _files = files;
        _name = name;
    }

    /// <summary>The tool: <c>$SYSTEMD_SANDBOX</c>, else where the project's machines keep it.</summary>
    /// <remarks>Else the project's shared tools next to the clone (<c>../shared/tools</c>), else where the project's machines keep them.</remarks>
    public static string Tool =>
        Environment.GetEnvironmentVariable("SYSTEMD_SANDBOX") is { Length: > 0 } tool ? tool
        : Path.GetFullPath(Path.Combine(TestEnvironment.RepositoryRoot, "..", "shared", "tools", "systemd-sandbox")) is var beside && File.Exists(beside) ? beside
        : "/work/shared/tools/systemd-sandbox";

    /// <summary>
    /// Boots a sandbox named after <paramref name="files"/>'s folder, which it shares; ignores the
    /// fixture unless the machine can (root, the tool, systemd installed).
    /// </summary>
    public static SystemdSandbox Boot(ExampleDaemon files)
    {
        TestEnvironment.RequireRoot();
        TestEnvironment.RequireTool(Tool);
        TestEnvironment.RequireTool("/lib/systemd/systemd");
        var sandbox = new SystemdSandbox(files, "daemon-net-" + Path.GetFileName(files.Folder));
        // The clone is shared too, live: the programs under test are there, wherever it is (a clone
        // under /tmp would be hidden by the sandbox's own /tmp), and no older copy is seen through
        // the overlay of / (which may keep showing a file as it was when systemd booted).
        string[] shared = files.Folder.StartsWith(TestEnvironment.RepositoryRoot + "/", StringComparison.Ordinal)
            ? [files.Folder]
            : [files.Folder, TestEnvironment.RepositoryRoot];
        CommandResult booted = files.Exec(new[] { "start", sandbox._name }.Concat(shared), null, Tool, timeout: _patience);
        Assert.That(booted.ExitCode, Is.EqualTo(0), "systemd-sandbox start: " + booted);
        return sandbox;
    }

    /// <summary>Runs <paramref name="command"/> inside the sandbox.</summary>
    public CommandResult Exec(params string[] command) =>
        _files.Exec(new[] { "exec", _name }.Concat(command), null, Tool, timeout: _patience);

    /// <summary>Starts <paramref name="command"/> inside the sandbox without waiting; see <see cref="Finish"/>.</summary>
    public Process Launch(params string[] command) => _files.Launch(new[] { "exec", _name }.Concat(command), null, Tool);

    /// <summary>Waits for what <see cref="Launch"/> started; its exit code and output.</summary>
    public CommandResult Finish(Process process) => _files.Finish(process, _patience);

    /// <summary><c>systemctl ARGS</c> inside, which must succeed.</summary>
    public void Systemctl(params string[] args)
    {
        CommandResult result = Exec(new[] { "systemctl" }.Concat(args).ToArray());
        Assert.That(result.ExitCode, Is.EqualTo(0), $"systemctl {string.Join(' ', args)}: {result}\n{Journal()}");
    }

    /// <summary>Writes <paramref name="text"/> as the unit <paramref name="name"/> in /etc/systemd/system and reloads systemd.</summary>
    public void Install(string name, string text)
    {
        string file = Path.Combine(_files.Folder, name);
        File.WriteAllText(file, text);
        CommandResult copied = Exec("cp", file, "/etc/systemd/system/" + name);
        Assert.That(copied.ExitCode, Is.EqualTo(0), copied.ToString());
        Systemctl("daemon-reload");
    }

    /// <summary>The value of one property of <paramref name="unit"/> (<c>systemctl show -p</c>).</summary>
    public string Show(string unit, string property)
    {
        CommandResult shown = Exec("systemctl", "show", "--value", "-p", property, unit);
        Assert.That(shown.ExitCode, Is.EqualTo(0), shown.ToString());
        return shown.Output.Trim();
    }

    /// <summary>True once <paramref name="condition"/> holds of the property, false after a minute.</summary>
    public bool WaitFor(string unit, string property, Func<string, bool> condition) =>
        ExampleDaemon.Eventually(() => condition(Show(unit, property)), _patience, pollMilliseconds: 50);

    /// <summary>What the journal holds, of one unit or of all: each line's message, without the journal's prefix.</summary>
    public string Journal(string? unit = null)
    {
        CommandResult journal = Exec(unit is null
            ? new[] { "journalctl", "--no-pager", "-o", "short-monotonic" }
            : new[] { "journalctl", "--no-pager", "-o", "cat", "-u", unit });
        return journal.Output;
    }

    /// <summary>How many lines of the unit's journal contain <paramref name="text"/>.</summary>
    public int CountInJournal(string unit, string text) => Regex.Matches(Journal(unit), Regex.Escape(text)).Count;

    /// <summary>Stops systemd and all it started; nothing of the sandbox is left.</summary>
    public void Dispose()
    {
        CommandResult stopped = _files.Exec(new[] { "stop", _name }, null, Tool, timeout: _patience);
        Assert.That(stopped.ExitCode, Is.EqualTo(0), "systemd-sandbox stop: " + stopped);
    }
}
