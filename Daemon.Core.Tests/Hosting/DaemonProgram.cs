using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Threading;

namespace Daemon.Core.Tests.Hosting;

/// <summary>The result of one run of a program.</summary>
public sealed record ProgramResult(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}; stdout: {Output.Trim()}; stderr: {Error.Trim()}";
}

/// <summary>
/// A daemon program under test, in a temp folder of its own that holds its pid and log files.
/// Every pid it learns is remembered and killed by pid on dispose, only if that process's
/// command line names the folder; nothing is ever killed by name.
/// </summary>
public sealed class DaemonProgram : IDisposable
{
    private readonly HashSet<int> _pids = new();

    public DaemonProgram(string program, string label)
    {
        Program = program;
        Folder = Path.Combine(Path.GetTempPath(), "daemon-net-tests", label + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Folder);
        PidFile = Path.Combine(Folder, "daemon.pid");
        LogFile = Path.Combine(Folder, "daemon.log");
    }

    /// <summary>The program's apphost.</summary>
    public string Program { get; set; }

    public string Folder { get; }

    public string PidFile { get; }

    public string LogFile { get; }

    /// <summary>Options every command gets after the pid and log files.</summary>
    public List<string> ExtraOptions { get; } = new();

    public string Log => File.Exists(LogFile) ? File.ReadAllText(LogFile) : "";

    /// <summary>Runs a command of the program with the pid file, log file and extra options.</summary>
    public ProgramResult Run(string command, params string[] extra)
    {
        var args = new List<string> { command, "--pid-file", PidFile, "--log-file", LogFile };
        args.AddRange(ExtraOptions);
        args.AddRange(extra);
        ProgramResult result = Exec(Program, args);
        Remember(result.Output);
        return result;
    }

    /// <summary>Starts the daemon and returns its pid, failing the test when it does not start.</summary>
    public int Start(params string[] extra)
    {
        ProgramResult result = Run("start", extra);
        NUnit.Framework.Assert.That(result.ExitCode, NUnit.Framework.Is.EqualTo(0), result.ToString());
        return ReadPid();
    }

    public int ReadPid()
    {
        int pid = int.Parse(File.ReadAllText(PidFile).Trim(), CultureInfo.InvariantCulture);
        _pids.Add(pid);
        return pid;
    }

    /// <summary>Runs <paramref name="file"/> with exactly <paramref name="args"/>, its input closed.</summary>
    public static ProgramResult Exec(
        string file,
        IEnumerable<string> args,
        IDictionary<string, string?>? environment = null,
        string? workingDirectory = null,
        TimeSpan? timeout = null)
    {
        TimeSpan limit = timeout ?? TimeSpan.FromSeconds(60);
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                start.Environment[key] = value;
            }
        }

        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', start.ArgumentList)} did not finish in {limit}");
        }

        // Reading to the end also proves no daemon kept the caller's pipes open.
        if (!output.Wait(limit) || !error.Wait(limit))
        {
            throw new TimeoutException("the command's output stayed open: a daemon holds the caller's pipe");
        }

        return new ProgramResult(process.ExitCode, output.Result, error.Result);
    }

    /// <summary>Waits until the log satisfies <paramref name="condition"/>; false after <paramref name="timeout"/>.</summary>
    public bool WaitForLog(Func<string, bool> condition, TimeSpan? timeout = null)
    {
        var watch = Stopwatch.StartNew();
        while (!condition(Log))
        {
            if (watch.Elapsed > (timeout ?? TimeSpan.FromSeconds(10)))
            {
                return false;
            }

            Thread.Sleep(20);
        }

        return true;
    }

    public bool WaitForLog(string text, TimeSpan? timeout = null) =>
        WaitForLog(log => log.Contains(text, StringComparison.Ordinal), timeout);

    /// <summary>Pids of live processes whose command line names this test's folder.</summary>
    public List<int> ProcessesOfThisTest()
    {
        var found = new List<int>();
        foreach (string dir in Directory.GetDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out int pid) && IsAlive(pid) && IsOurs(pid))
            {
                found.Add(pid);
            }
        }

        return found;
    }

    public void Dispose()
    {
        foreach (int pid in _pids)
        {
            if (IsAlive(pid) && IsOurs(pid))
            {
                try
                {
                    using var process = Process.GetProcessById(pid);
                    process.Kill();
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                {
                }
            }

            WaitUntilGone(pid, TimeSpan.FromSeconds(5));
        }

        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>True while <paramref name="pid"/> runs; a zombie waiting for init counts as gone.</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            char state = stat[stat.LastIndexOf(')') + 2];
            return state is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    public static bool WaitUntilGone(int pid, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (IsAlive(pid))
        {
            if (watch.Elapsed > timeout)
            {
                return false;
            }

            Thread.Sleep(10);
        }

        return true;
    }

    private bool IsOurs(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Contains(Folder, StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    private void Remember(string output)
    {
        int at = output.IndexOf("(pid ", StringComparison.Ordinal);
        if (at >= 0)
        {
            int end = output.IndexOf(')', at);
            if (end > at && int.TryParse(output.AsSpan(at + 5, end - at - 5), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
            {
                _pids.Add(pid);
            }
        }
    }
}
