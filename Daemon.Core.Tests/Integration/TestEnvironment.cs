using System;
using System.Diagnostics;
using System.IO;
using Mono.Unix.Native;
using NUnit.Framework;

namespace Daemon.Core.Tests.Integration;

/// <summary>What the fixtures need from the machine: the repository, root, installed tools, temp folders.</summary>
public static class TestEnvironment
{
    /// <summary>Every test's temp folder is below this one, so that leftovers are easy to find.</summary>
    public static string TestsFolder => Path.Combine(Path.GetTempPath(), "daemon-net-tests");

    /// <summary>The folder that holds Daemon.sln, found upwards from the test assembly.</summary>
    public static string RepositoryRoot
    {
        get
        {
            string? dir = AppContext.BaseDirectory;
            while (dir is not null && !File.Exists(Path.Combine(dir, "Daemon.sln")))
            {
                dir = Path.GetDirectoryName(dir);
            }

            return dir ?? throw new InvalidOperationException("cannot find the repository root");
        }
    }

    /// <summary>Creates a new, empty temp folder for one test (or fixture): <c>LABEL-XXXXXXXX</c>.</summary>
    public static string CreateTestFolder(string label)
    {
        string folder = Path.Combine(TestsFolder, label + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        return folder;
    }

    /// <summary>
    /// Turns the .NET runtime's diagnostics off in a process the tests start (and in whatever it
    /// starts): a runtime with diagnostics on creates clr-debug-pipe-* and dotnet-diagnostic-*
    /// files in the temp folder, and one that is killed never removes them.
    /// </summary>
    public static ProcessStartInfo WithoutDiagnostics(this ProcessStartInfo start)
    {
        start.Environment["DOTNET_EnableDiagnostics"] = "0";
        return start;
    }

    /// <summary>Ignores the test unless it runs as root.</summary>
    public static void RequireRoot()
    {
        if (Syscall.geteuid() != 0)
        {
            Assert.Ignore("needs root: changing users and pid namespaces is root's");
        }
    }

    /// <summary>Ignores the test unless <paramref name="path"/> is installed; returns it.</summary>
    public static string RequireTool(string path)
    {
        if (!File.Exists(path))
        {
            Assert.Ignore($"{path} is not installed (.ci/run installs it)");
        }

        return path;
    }
}
