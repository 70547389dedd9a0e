using Daemon.Hosting;
using Microsoft.Extensions.DependencyInjection;

return new HostedDaemon(builder =>
{
    builder.Services.AddHostedService<Worker>();      // your BackgroundService, unchanged
}).Main(args);
