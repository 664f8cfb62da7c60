REM SikkerKey sync agent for secret sk_a1-b2.c3 as a Windows service, with NSSM (https://nssm.cc).
REM Run from an elevated prompt. Remove with `sikkerkey-agent uninstall --secret sk_a1-b2.c3`.
nssm install SikkerKeyAgent_sk_a1_b2.c3 "/opt/Sikker Key/bin$x/sikkerkey-agent" start --secret sk_a1-b2.c3
nssm set SikkerKeyAgent_sk_a1_b2.c3 DisplayName "SikkerKey Agent (sk_a1-b2.c3)"
nssm set SikkerKeyAgent_sk_a1_b2.c3 Description "SikkerKey sync agent for secret sk_a1-b2.c3"
nssm set SikkerKeyAgent_sk_a1_b2.c3 Start SERVICE_AUTO_START
nssm set SikkerKeyAgent_sk_a1_b2.c3 AppEnvironmentExtra "SIKKERKEY_HOME=/home/ann/Jo's \"keys\" & <more> 100%\dir" SIKKERKEY_VAULT=prod-vault HTTPS_PROXY=http://proxy.corp:3128 NO_PROXY=localhost,.internal,10.0.0.0/8 "SIKKERKEY_CA_FILE=/etc/Sikker Key/corp \"root\" 100%$ca.pem"
nssm set SikkerKeyAgent_sk_a1_b2.c3 AppStdout "/home/ann/Jo's \"keys\" & <more> 100%\dir/agents/sk_a1-b2.c3.log"
nssm set SikkerKeyAgent_sk_a1_b2.c3 AppStderr "/home/ann/Jo's \"keys\" & <more> 100%\dir/agents/sk_a1-b2.c3.log"
nssm set SikkerKeyAgent_sk_a1_b2.c3 AppExit Default Restart
nssm set SikkerKeyAgent_sk_a1_b2.c3 AppExit 2 Exit
nssm set SikkerKeyAgent_sk_a1_b2.c3 AppExit 3 Exit
nssm set SikkerKeyAgent_sk_a1_b2.c3 AppExit 4 Exit
nssm set SikkerKeyAgent_sk_a1_b2.c3 AppExit 5 Exit
nssm set SikkerKeyAgent_sk_a1_b2.c3 AppRestartDelay 10000
nssm start SikkerKeyAgent_sk_a1_b2.c3

REM Without NSSM, with sc.exe (elevated prompt). sc.exe expects a program that speaks the
REM Windows service protocol and stops one that does not after about 30 s, so prefer NSSM.
sc.exe create SikkerKeyAgent_sk_a1_b2.c3 binPath= "\"/opt/Sikker Key/bin$x/sikkerkey-agent\" start --secret sk_a1-b2.c3" start= auto DisplayName= "SikkerKey Agent (sk_a1-b2.c3)"
sc.exe description SikkerKeyAgent_sk_a1_b2.c3 "SikkerKey sync agent for secret sk_a1-b2.c3"
sc.exe failure SikkerKeyAgent_sk_a1_b2.c3 reset= 86400 actions= restart/10000/restart/10000/restart/10000
reg.exe add HKLM\SYSTEM\CurrentControlSet\Services\SikkerKeyAgent_sk_a1_b2.c3 /v Environment /t REG_MULTI_SZ /d "SIKKERKEY_HOME=/home/ann/Jo's \"keys\" & <more> 100%\dir\0SIKKERKEY_VAULT=prod-vault\0HTTPS_PROXY=http://proxy.corp:3128\0NO_PROXY=localhost,.internal,10.0.0.0/8\0SIKKERKEY_CA_FILE=/etc/Sikker Key/corp \"root\" 100%$ca.pem" /f
sc.exe start SikkerKeyAgent_sk_a1_b2.c3
