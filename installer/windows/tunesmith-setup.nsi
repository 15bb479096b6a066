; Tunesmith's Windows installer (NSIS 3), built on Linux by installer/windows/build.sh:
;   makensis -DVERSION=0.1.0 -DPAYLOAD=build/windows-installer/payload [-DICON=...] -DOUT_FILE=... tunesmith-setup.nsi
; A per-user install (no administrator rights) into %LOCALAPPDATA%\Programs\Tunesmith.  It carries uv.exe,
; Tunesmith's wheel, the lock files and bootstrap.py in <app>\setup, and builds the environment at install
; time, in its progress window: step 1 installs CPython with uv (here), the other steps run in bootstrap.py
; (torch's CUDA or CPU build from what nvidia-smi reports, then the lock).  Log: <app>\logs\setup.log.
; A failed step says which step, why and what to do; running the installer again repairs.  Shortcuts (Start
; menu, desktop) start pythonw.exe, so no console window opens.
; Switches: /S silent; /D=DIR install folder; /DRYRUN writes the commands to the log instead of running
; them (tests/e2e/test_windows_installer.py runs it under Wine).
; The uninstaller removes what this installer wrote (program, environment, Python, uv's cache, shortcuts)
; and leaves the user's runs (Documents\Tunesmith), app data (%LOCALAPPDATA%\Tunesmith) and settings.

; A 64-bit installer: Tunesmith needs 64-bit Windows anyway, and it runs under Debian's wine64 (tests).
Target amd64-unicode
ManifestDPIAware true
SetCompressor /SOLID lzma
RequestExecutionLevel user

!ifndef VERSION
  !define VERSION "0.0.0"
!endif
!ifndef PYTHON_VERSION
  !define PYTHON_VERSION "3.11"
!endif
!ifndef PAYLOAD
  !error "Pass -DPAYLOAD=<folder with uv.exe, bootstrap.py, the wheel and the locks> (build.sh makes it)"
!endif
!ifndef OUT_FILE
  !define OUT_FILE "Tunesmith-Setup-${VERSION}.exe"
!endif

!define APP_NAME "Tunesmith"
!define PUBLISHER "Tunesmith developers"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Tunesmith"

Name "${APP_NAME} ${VERSION}"
OutFile "${OUT_FILE}"
InstallDir "$LOCALAPPDATA\Programs\${APP_NAME}"
InstallDirRegKey HKCU "${UNINST_KEY}" "InstallLocation"
BrandingText "${APP_NAME} ${VERSION}"
ShowInstDetails show
ShowUninstDetails show

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APP_NAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP_NAME} installer"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "LegalCopyright" "Apache-2.0"

!include "MUI2.nsh"
!include "x64.nsh"
!include "FileFunc.nsh"
!include "LogicLib.nsh"

!ifdef ICON
  !define MUI_ICON "${ICON}"
  !define MUI_UNICON "${ICON}"
!endif
!define MUI_ABORTWARNING
!define MUI_WELCOMEPAGE_TEXT "This installs ${APP_NAME} ${VERSION} for you (no administrator rights): fine-tune an open LLM on your own data, then chat with it.$\r$\n$\r$\nSetting up downloads Python and the libraries Tunesmith uses: about 3 GB with an NVIDIA GPU (RTX 20 series or newer, driver 570.65 or newer), about 700 MB without one. Keep the computer online until it finishes.$\r$\n$\r$\nClick Next to continue."
!define MUI_FINISHPAGE_RUN "$INSTDIR\env\Scripts\pythonw.exe"
!define MUI_FINISHPAGE_RUN_PARAMETERS "-m tunesmith.desktop.launcher"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP_NAME}"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Var DryRun
Var Log

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP "${APP_NAME} needs 64-bit Windows 10 or newer." /SD IDOK
    Abort
  ${EndIf}
  SetShellVarContext current
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/DRYRUN" $R1
  ${If} ${Errors}
    StrCpy $DryRun 0
  ${Else}
    StrCpy $DryRun 1
  ${EndIf}
FunctionEnd

Function un.onInit
  SetShellVarContext current
FunctionEnd

; A line in the progress window and in logs\setup.log.
!macro LogLine TEXT
  DetailPrint `${TEXT}`
  FileOpen $R9 "$Log" a
  FileSeek $R9 0 END
  FileWrite $R9 `${TEXT}$\r$\n`
  FileClose $R9
!macroend

; Sets an environment variable for the commands this installer starts.
!macro SetEnv NAME VALUE
  System::Call 'Kernel32::SetEnvironmentVariable(t "${NAME}", t "${VALUE}") i'
!macroend

; Runs a command (or, with /DRYRUN, only logs it); on failure shows which step, why and what to do, then stops.
!macro RunStep TITLE COMMAND FIX
  !insertmacro LogLine `${TITLE}`
  !insertmacro LogLine `  ${COMMAND}`
  ${If} $DryRun == 0
    nsExec::ExecToLog '${COMMAND}'
    Pop $0
    ${If} $0 != 0
      StrCpy $1 `${TITLE} failed (exit code $0). ${FIX}`
      ; bootstrap.py says precisely which of its steps failed and why.
      IfFileExists "$INSTDIR\logs\setup-error.txt" 0 +4
        FileOpen $2 "$INSTDIR\logs\setup-error.txt" r
        FileRead $2 $1
        FileClose $2
      !insertmacro LogLine "$1"
      MessageBox MB_ICONSTOP "$1$\r$\n$\r$\nThe full log: $Log$\r$\nRunning this installer again repairs what is missing." /SD IDOK
      SetErrorLevel 2
      Abort "$1"
    ${EndIf}
  ${EndIf}
!macroend

Section "${APP_NAME}" SecMain
  SectionIn RO
  SetDetailsPrint both
  ; setup\ holds only what this installer carries; it is replaced as a whole (a repair, an update).
  RMDir /r "$INSTDIR\setup"
  SetOutPath "$INSTDIR\setup"
  File /r "${PAYLOAD}\*.*"
  CreateDirectory "$INSTDIR\logs"
  StrCpy $Log "$INSTDIR\logs\setup.log"
  Delete "$INSTDIR\logs\setup-error.txt"
  WriteUninstaller "$INSTDIR\Uninstall.exe"

  ; Settings > Apps (per user).
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINST_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKCU "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\setup\tunesmith.ico"
  WriteRegStr HKCU "${UNINST_KEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
  WriteRegStr HKCU "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\Uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoRepair" 1

  ; uv keeps its Pythons and cache inside the install folder (the uninstaller removes them) and reads no
  ; user configuration; bootstrap.py sets the same for its own steps.
  !insertmacro SetEnv "UV_PYTHON_INSTALL_DIR" "$INSTDIR\python"
  !insertmacro SetEnv "UV_CACHE_DIR" "$INSTDIR\cache"
  !insertmacro SetEnv "UV_MANAGED_PYTHON" "1"
  !insertmacro SetEnv "UV_NO_CONFIG" "1"
  !insertmacro SetEnv "UV_NO_PROGRESS" "1"
  !insertmacro SetEnv "NO_COLOR" "1"
  !insertmacro SetEnv "PYTHONUTF8" "1"
  ${If} $DryRun == 1
    !insertmacro LogLine "Dry run: the commands are written here, not run."
  ${EndIf}
  !insertmacro RunStep "Step 1: Install Python ${PYTHON_VERSION}" \
    '"$INSTDIR\setup\uv.exe" python install ${PYTHON_VERSION} --no-bin --no-registry' \
    "uv could not install Python: check the internet connection (and a proxy or firewall, if any); if uv.exe did not start at all, an antivirus may have blocked it: allow it. Then run the installer again."
  !insertmacro RunStep "Steps 2 and later: torch, Tunesmith and its libraries (bootstrap.py)" \
    '"$INSTDIR\setup\uv.exe" run --no-project --managed-python --no-python-downloads --python ${PYTHON_VERSION} "$INSTDIR\setup\bootstrap.py" --app-dir "$INSTDIR"' \
    "See the log for the step that failed, then run the installer again."

  ; Shortcuts: pythonw.exe opens no console window.
  SetOutPath "$INSTDIR"
  !ifdef ICON
    StrCpy $3 "$INSTDIR\setup\tunesmith.ico"
  !else
    StrCpy $3 "$INSTDIR\env\Scripts\pythonw.exe"
  !endif
  CreateShortcut "$SMPROGRAMS\${APP_NAME}.lnk" "$INSTDIR\env\Scripts\pythonw.exe" "-m tunesmith.desktop.launcher" \
    "$3" 0 SW_SHOWNORMAL "" "Fine-tune an open LLM on your own data"
  CreateShortcut "$DESKTOP\${APP_NAME}.lnk" "$INSTDIR\env\Scripts\pythonw.exe" "-m tunesmith.desktop.launcher" \
    "$3" 0 SW_SHOWNORMAL "" "Fine-tune an open LLM on your own data"
  !insertmacro LogLine "Shortcuts: $SMPROGRAMS\${APP_NAME}.lnk and $DESKTOP\${APP_NAME}.lnk"

  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKCU "${UNINST_KEY}" "EstimatedSize" "$0"
SectionEnd

Section "Uninstall"
  Delete "$SMPROGRAMS\${APP_NAME}.lnk"
  Delete "$DESKTOP\${APP_NAME}.lnk"
  ; Only the folders this installer made.  Never RMDir /r "$INSTDIR": the user may have chosen a folder
  ; that holds their own files.  Runs, exports, app data and settings live elsewhere and stay.
  RMDir /r "$INSTDIR\env"
  RMDir /r "$INSTDIR\python"
  RMDir /r "$INSTDIR\cache"
  RMDir /r "$INSTDIR\setup"
  RMDir /r "$INSTDIR\logs"
  Delete "$INSTDIR\Uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKCU "${UNINST_KEY}"
SectionEnd
